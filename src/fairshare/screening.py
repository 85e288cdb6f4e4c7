"""Screening: a case's vulnerabilities become service needs and a priority tier, with reasons.

The categories are those of Directive 2013/33/EU Art. 21 and Directive (EU) 2024/1346 Art. 24
(:func:`fairshare.cases.vulnerability_categories`). The rules that turn them into needs and
tiers are data (``rules/screening.yaml``, see docs/screening.md):

* a category may need one place of a service per person (``pregnant`` -> ``maternity``);
* tier 1 (urgent): unaccompanied minors, victims of trafficking, survivors of violence,
  pregnant women; tier 2: every other category; tier 3: no category. A case's tier is its
  most urgent member's, and all members count at that tier;
* only ``minor`` (age below 18, or an uncertain age not yet assessed) and
  ``unaccompanied_minor`` (a minor in a case without any adult) are derived; all other
  categories must be declared, directly or by a UNHCR specific-needs code.

>>> from datetime import date
>>> from fairshare.cases import Case, Person
>>> case = Case("c2", (Person("p3", age=16, age_uncertain=True),), "EL", date(2015, 10, 2))
>>> s = screen_case(case)
>>> s.tier, dict(s.needs), s.categories["p3"]
(1, {'unaccompanied_minor': 1}, ('minor', 'unaccompanied_minor'))
>>> s.reasons[0][1]
'p3 is treated as a minor: age 16 is uncertain and not yet assessed (Regulation (EU) 2024/1358)'
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import yaml

from fairshare.cases import SERVICES, Case, Person, unhcr_codes, vulnerability_categories
from fairshare.errors import InputError
from fairshare.reference import read_data_file

__all__ = [
    "Screening",
    "ScreeningRules",
    "category_of_unhcr_code",
    "counts_as_minor",
    "screen_case",
    "screen_cases",
    "screening_rules",
]


@dataclass(frozen=True)
class ScreeningRules:
    """The screening policy of ``rules/screening.yaml``, checked."""

    needs: Mapping[str, str]  # category -> service
    need_references: Mapping[str, str]
    tier_of: Mapping[str, int]  # category -> tier
    tier_labels: Mapping[int, str]
    default_tier: int
    minor_below_age: int
    age_uncertain_reference: str
    unaccompanied_reference: str
    unhcr_mapping: Mapping[str, str]  # code -> category ("" = no category)
    subcodes_inherit_top_level: bool


def _load(raw: Mapping[str, Any]) -> ScreeningRules:
    categories = vulnerability_categories()
    needs: dict[str, str] = {}
    refs: dict[str, str] = {}
    for category, spec in raw["needs"].items():
        if category not in categories or spec["service"] not in SERVICES:
            raise InputError(f"rules/screening.yaml: bad need {category} -> {spec['service']}")
        needs[category] = spec["service"]
        refs[category] = str(spec.get("reference", ""))
    tier_of: dict[str, int] = {}
    labels: dict[int, str] = {}
    for tier, spec in raw["tiers"].items():
        labels[int(tier)] = str(spec["label"])
        for category in spec["categories"]:
            if category not in categories or category in tier_of:
                raise InputError(f"rules/screening.yaml: category {category} is unknown or twice")
            tier_of[category] = int(tier)
    missing = set(categories) - set(tier_of)
    if missing:
        raise InputError(f"rules/screening.yaml: no tier for {', '.join(sorted(missing))}")
    mapping_rows = csv.DictReader(io.StringIO(read_data_file(raw["unhcr"]["mapping"])))
    mapping = {row["unhcr_code"]: row["rcd_category"] for row in mapping_rows}
    for code, category in mapping.items():
        if category and category not in categories:
            raise InputError(f"UNHCR mapping: {code} -> unknown category {category}")
    derived = raw["derived"]
    return ScreeningRules(
        needs=needs,
        need_references=refs,
        tier_of=tier_of,
        tier_labels=labels,
        default_tier=int(raw["default_tier"]),
        minor_below_age=int(derived["minor_below_age"]),
        age_uncertain_reference=str(derived["age_uncertain_reference"]),
        unaccompanied_reference=str(derived["unaccompanied_reference"]),
        unhcr_mapping=mapping,
        subcodes_inherit_top_level=bool(raw["unhcr"]["subcodes_inherit_top_level"]),
    )


@cache
def screening_rules() -> ScreeningRules:
    """The bundled screening rules (``rules/screening.yaml``)."""
    text = resources.files("fairshare.rules").joinpath("screening.yaml").read_text("utf-8")
    return _load(yaml.safe_load(text))


def category_of_unhcr_code(code: str, rules: ScreeningRules | None = None) -> str | None:
    """The Art. 21 category a UNHCR specific-needs code maps onto, or ``None``.

    The mapping is fairshare's own assumption, for review by a protection officer (not an
    official table). A sub-code without its own row takes its top-level code's category.

    >>> [category_of_unhcr_code(code) for code in ("SC-UC", "DS-BD", "FU")]
    ['unaccompanied_minor', 'disability', None]
    """
    r = rules or screening_rules()
    if code not in unhcr_codes():
        raise InputError(f"unknown UNHCR specific-needs code '{code}'")
    category = r.unhcr_mapping.get(code)
    if category is None and r.subcodes_inherit_top_level and "-" in code:
        category = r.unhcr_mapping.get(code.split("-", 1)[0])
    return category or None


def counts_as_minor(person: Person, rules: ScreeningRules | None = None) -> bool:
    """Whether the person is (treated as) a minor: declared, under 18, or age uncertain."""
    r = rules or screening_rules()
    return (
        person.age_uncertain
        or (person.age is not None and person.age < r.minor_below_age)
        or any(v in ("minor", "unaccompanied_minor") for v in person.vulnerabilities)
        or any(
            category_of_unhcr_code(c, r) in ("minor", "unaccompanied_minor")
            for c in person.unhcr_codes
        )
    )


@dataclass(frozen=True)
class Screening:
    """The outcome of screening one case.

    ``needs``: places needed per service (only services with at least one place);
    ``categories``: person id -> categories, in the order of the Art. 21 list;
    ``reasons``: (code, plain-language text) pairs, in the order they were found.
    """

    case_id: str
    tier: int
    needs: Mapping[str, int]
    categories: Mapping[str, tuple[str, ...]]
    reasons: tuple[tuple[str, str], ...]

    def has(self, category: str) -> bool:
        """Whether any member of the case has ``category``."""
        return any(category in cats for cats in self.categories.values())


def _person_categories(
    person: Person, case: Case, rules: ScreeningRules, reasons: list[tuple[str, str]]
) -> tuple[str, ...]:
    if (
        not person.vulnerabilities
        and not person.unhcr_codes
        and not person.age_uncertain
        and (person.age is None or person.age >= rules.minor_below_age)
    ):
        return ()  # an adult (or age unknown) with nothing declared: no category, no reason
    known = vulnerability_categories()
    found: set[str] = set()
    for category in person.vulnerabilities:
        found.add(category)
        reasons.append(
            ("category.declared", f"{person.id} is declared: {known[category][0]} ({category})")
        )
    meanings = unhcr_codes()
    for code in person.unhcr_codes:
        mapped = category_of_unhcr_code(code, rules)
        if mapped is None:
            reasons.append(
                (
                    "category.unhcr",
                    f"{person.id} has UNHCR code {code} ({meanings[code]}): no vulnerability "
                    "category; it is kept on the record",
                )
            )
            continue
        found.add(mapped)
        reasons.append(
            (
                "category.unhcr",
                f"{person.id} has UNHCR code {code} ({meanings[code]}), read as {mapped} "
                "(fairshare's own mapping, for review by a protection officer)",
            )
        )
    if "minor" not in found and "unaccompanied_minor" not in found:
        if person.age_uncertain:
            age = "age" if person.age is None else f"age {person.age}"
            found.add("minor")
            reasons.append(
                (
                    "category.age_uncertain",
                    f"{person.id} is treated as a minor: {age} is uncertain and not yet "
                    f"assessed ({rules.age_uncertain_reference})",
                )
            )
        elif person.age is not None and person.age < rules.minor_below_age:
            found.add("minor")
            reasons.append(
                (
                    "category.age",
                    f"{person.id} is a minor: age {person.age} is below {rules.minor_below_age}",
                )
            )
    is_minor = bool(found & {"minor", "unaccompanied_minor"})
    if (
        is_minor
        and "unaccompanied_minor" not in found
        and all(counts_as_minor(m, rules) for m in case.members)
    ):
        found.add("unaccompanied_minor")
        alone = "alone in the case" if case.size == 1 else "in a case without an adult"
        basis = " (age uncertain)" if person.age_uncertain else ""
        reasons.append(
            (
                "category.unaccompanied",
                f"{person.id} is treated as an unaccompanied minor{basis}: a minor {alone} "
                f"({rules.unaccompanied_reference})",
            )
        )
    return tuple(c for c in known if c in found)


def screen_case(case: Case, rules: ScreeningRules | None = None) -> Screening:
    """Screen a case: categories per member, service places needed, priority tier, reasons."""
    r = rules or screening_rules()
    reasons: list[tuple[str, str]] = []
    categories: dict[str, tuple[str, ...]] = {}
    tiers: dict[str, int] = {}
    for person in case.members:
        cats = _person_categories(person, case, r, reasons)
        categories[person.id] = cats
        tiers[person.id] = min((r.tier_of[c] for c in cats), default=r.default_tier)
    needs: dict[str, int] = {}
    needing: dict[str, list[str]] = {}
    for pid, cats in categories.items():
        for service in {r.needs[c] for c in cats if c in r.needs}:
            needing.setdefault(service, []).append(pid)
    for service in SERVICES:
        who = needing.get(service)
        if who:
            needs[service] = len(who)
            causes = sorted(
                {c for pid in who for c in categories[pid] if r.needs.get(c) == service},
                key=list(vulnerability_categories()).index,
            )
            refs = "; ".join(r.need_references[c] for c in causes if r.need_references[c])
            places = "place" if len(who) == 1 else "places"
            reasons.append(
                (
                    f"need.{service}",
                    f"{len(who)} {service} {places} for {', '.join(who)} "
                    f"({', '.join(causes)}; {refs})",
                )
            )
    tier = min(tiers.values(), default=r.default_tier)
    label = r.tier_labels.get(tier, "")
    if tier == r.default_tier:
        text = f"tier {tier} ({label}): no member has a vulnerability category"
    else:
        leaders = [pid for pid, t in tiers.items() if t == tier]
        why = ", ".join(
            f"{pid} ({', '.join(c for c in categories[pid] if r.tier_of[c] == tier)})"
            for pid in leaders
        )
        text = f"tier {tier} ({label}) because of {why}"
    if case.size > 1:
        text += f"; all {case.size} members count at tier {tier}"
    reasons.append(("tier", text))
    return Screening(
        case_id=case.id,
        tier=tier,
        needs=needs,
        categories=categories,
        reasons=tuple(reasons),
    )


# A placeholder for the j-th member's id in a cached screening (``\x00j\x00``); a case whose
# ids contain the marker itself is screened directly.
_MARK = "\x00"
#: Reasons about one person alone (their declared categories, codes and age).
_OWN_REASONS = frozenset(
    ("category.declared", "category.unhcr", "category.age_uncertain", "category.age")
)
#: A reason as (code, text, format string over the member ids or ``None`` if it names none).
_Reason = tuple[str, str, str | None]


def _class(person: Person, r: ScreeningRules) -> tuple[Any, ...] | None:
    """What screening reads of a person beyond their id and exact age (``None``: an adult
    with nothing declared)."""
    age = person.age
    if (
        age is not None
        and age >= r.minor_below_age
        and not person.vulnerabilities
        and not person.unhcr_codes
        and not person.age_uncertain
    ):
        return None
    minor = age is not None and age < r.minor_below_age
    return (age is None, minor, person.age_uncertain, person.vulnerabilities, person.unhcr_codes)


def _stand_in(members: Sequence[Person]) -> Case:
    """The case with its member ids replaced by placeholders."""
    return Case(
        id=_MARK,
        members=tuple(
            Person(
                id=f"{_MARK}{j}{_MARK}",
                age=p.age,
                age_uncertain=p.age_uncertain,
                vulnerabilities=p.vulnerabilities,
                unhcr_codes=p.unhcr_codes,
            )
            for j, p in enumerate(members)
        ),
        entry_state="EL",
        registered_on=date(2000, 1, 1),
    )


def _format(text: str) -> str | None:
    """``text`` as a format string over the member ids (``None``: it names no member)."""
    if _MARK not in text:
        return None
    pieces = text.split(_MARK)
    return "".join(
        "{" + x + "}" if k % 2 else x.replace("{", "{{").replace("}", "}}")
        for k, x in enumerate(pieces)
    )


class _CaseTemplate:
    """What screening says of every case whose members are alike in :func:`_class`."""

    __slots__ = ("categories", "needs", "plain", "tail", "tier", "unaccompanied")

    def __init__(self, members: Sequence[Person], r: ScreeningRules) -> None:
        stand_in = _stand_in(members)
        s = screen_case(stand_in, r)
        self.tier = s.tier
        self.needs = s.needs
        self.categories = tuple(s.categories[p.id] for p in stand_in.members)
        self.unaccompanied: dict[int, _Reason] = {}
        tail: list[_Reason] = []
        for code, text in s.reasons:
            if code in _OWN_REASONS:
                continue
            if code == "category.unaccompanied":
                member = int(text.split(_MARK)[1])
                self.unaccompanied[member] = (code, text, _format(text))
            else:
                tail.append((code, text, _format(text)))
        self.tail = tuple(tail)
        #: The reasons as they stand, when none of them names a member (else None).
        self.plain: tuple[tuple[str, str], ...] | None = (
            tuple((code, text) for code, text, _ in tail)
            if not self.unaccompanied and all(fmt is None for _, _, fmt in tail)
            else None
        )


def _own_reasons(person: Person, r: ScreeningRules) -> tuple[_Reason, ...]:
    """The reasons about this person alone, with their id as member 0."""
    s = screen_case(_stand_in([person]), r)
    return tuple((code, text, _format(text)) for code, text in s.reasons if code in _OWN_REASONS)


def screen_cases(cases: Sequence[Case], rules: ScreeningRules | None = None) -> list[Screening]:
    """Screen many cases; the same as ``[screen_case(c) for c in cases]``, only faster.

    Screening reads only the members' ages, declared categories and codes, so the reasons
    about each kind of person, and what follows for each kind of case (unaccompanied minors,
    service places, the tier), are worked out once and reused with each case's own person
    ids (``tests/test_screening.py`` checks the equality).
    """
    r = rules or screening_rules()
    kinds: dict[tuple[Any, ...], _CaseTemplate] = {}
    own: dict[tuple[Any, ...], tuple[_Reason, ...]] = {}
    out: list[Screening] = []
    for case in cases:
        members = case.members
        classes = [_class(p, r) for p in members]
        key = tuple(classes)
        template = kinds.get(key)
        if template is not None and template.plain is not None and not any(classes):
            # Adults with nothing declared: no reason names a member (tier 3).
            out.append(
                Screening(
                    case_id=case.id,
                    tier=template.tier,
                    needs=dict(template.needs),
                    categories=dict(zip([p.id for p in members], template.categories, strict=True)),
                    reasons=template.plain,
                )
            )
            continue
        if template is None:
            if any(_MARK in p.id for p in members):
                out.append(screen_case(case, r))
                continue
            template = kinds[key] = _CaseTemplate(members, r)
        ids = [p.id for p in members]
        reasons: list[tuple[str, str]] = []
        for j, p in enumerate(members):
            if classes[j] is None:
                continue
            signature = (p.age, p.age_uncertain, p.vulnerabilities, p.unhcr_codes)
            mine = own.get(signature)
            if mine is None:
                mine = own[signature] = _own_reasons(p, r)
            for code, text, fmt in mine:
                reasons.append((code, text if fmt is None else fmt.format(p.id)))
            extra = template.unaccompanied.get(j)
            if extra is not None:
                code, text, fmt = extra
                reasons.append((code, text if fmt is None else fmt.format(*ids)))
        for code, text, fmt in template.tail:
            reasons.append((code, text if fmt is None else fmt.format(*ids)))
        out.append(
            Screening(
                case_id=case.id,
                tier=template.tier,
                needs=dict(template.needs),
                categories=dict(zip(ids, template.categories, strict=True)),
                reasons=tuple(reasons),
            )
        )
    return out
