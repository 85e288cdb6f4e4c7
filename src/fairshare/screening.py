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
from collections.abc import Mapping
from dataclasses import dataclass
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
