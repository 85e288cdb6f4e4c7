"""Responsibility: destinations bound by family links, and cases that must stay together.

The family criteria of the Dublin III Regulation (Regulation (EU) No 604/2013), kept as data in
``rules/responsibility.yaml`` and applied in order, the first that applies deciding:

* Art. 8(1)/(2) — an unaccompanied minor goes to the state where a parent or sibling, or
  else a relative, is legally present;
* Art. 9 — to a family member who is a beneficiary of international protection;
* Art. 10 — to a family member whose application awaits a first-instance decision;
* Art. 16(1) — a person dependent on a child, sibling or parent legally resident in a state
  because of pregnancy, a new-born child, serious illness, disability or old age;
* Art. 11 — family members applying together are kept together: :func:`linked_groups`.

>>> from datetime import date
>>> from fairshare.cases import Case, FamilyLink, Person
>>> from fairshare.screening import screen_case
>>> case = Case("c1", (Person("p1", age=34),), "EL", date(2015, 10, 2),
...             family_links=(FamilyLink("SE", "spouse", "beneficiary"),))
>>> b = binding_destination(case, screen_case(case), {"DE", "SE"})
>>> b.state, b.article, b.available
('SE', 'Art. 9', True)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from fairshare.cases import LINK_STATUSES, RELATIONS, Case, FamilyLink
from fairshare.errors import InputError
from fairshare.reference import states
from fairshare.screening import Screening, counts_as_minor, screening_rules

__all__ = [
    "Binding",
    "FamilyRule",
    "ResponsibilityRules",
    "binding_destination",
    "binding_of",
    "linked_groups",
    "responsibility_rules",
]


@dataclass(frozen=True)
class FamilyRule:
    """One family criterion of Regulation (EU) No 604/2013."""

    id: str
    article: str
    title: str
    relations: tuple[str, ...]
    statuses: tuple[str, ...]
    requires_desire: bool
    text: str
    when_case_has_any: tuple[str, ...] = ()
    newborn_below_age: int | None = None


@dataclass(frozen=True)
class ResponsibilityRules:
    """The rules of ``rules/responsibility.yaml``, in the order they are applied."""

    regulation: str
    rules: tuple[FamilyRule, ...]
    parent_only_for_minors: bool
    status_text: Mapping[str, str]
    family_procedure_article: str
    family_procedure_text: str


def _load(raw: Mapping[str, Any]) -> ResponsibilityRules:
    rules: list[FamilyRule] = []
    for spec in raw["rules"]:
        rule = FamilyRule(
            id=str(spec["id"]),
            article=str(spec["article"]),
            title=str(spec["title"]),
            relations=tuple(spec["relations"]),
            statuses=tuple(spec["statuses"]),
            requires_desire=bool(spec["requires_desire"]),
            text=" ".join(str(spec["text"]).split()),
            when_case_has_any=tuple(spec.get("when_case_has_any", ())),
            newborn_below_age=spec.get("newborn_below_age"),
        )
        bad = [r for r in rule.relations if r not in RELATIONS]
        bad += [s for s in rule.statuses if s not in LINK_STATUSES]
        if bad:
            raise InputError(f"rules/responsibility.yaml, {rule.id}: unknown {', '.join(bad)}")
        rules.append(rule)
    procedure = raw["family_procedure"]
    return ResponsibilityRules(
        regulation=str(raw["regulation"]),
        rules=tuple(rules),
        parent_only_for_minors=bool(raw["parent_is_family_member_only_for_minors"]),
        status_text={str(k): str(v) for k, v in raw["status_text"].items()},
        family_procedure_article=str(procedure["article"]),
        family_procedure_text=" ".join(str(procedure["text"]).split()),
    )


@cache
def responsibility_rules() -> ResponsibilityRules:
    """The bundled family criteria (``rules/responsibility.yaml``)."""
    text = resources.files("fairshare.rules").joinpath("responsibility.yaml").read_text("utf-8")
    return _load(yaml.safe_load(text))


@dataclass(frozen=True)
class Binding:
    """A destination bound by a family link, the article that binds it, and why.

    ``available`` is ``False`` when the bound state is not a participating destination: the
    case then waits for its link ("waiting_link") instead of being allocated elsewhere.
    """

    state: str
    article: str
    text: str
    available: bool = True
    rule: str = ""
    link: FamilyLink | None = None


def _state_name(code: str) -> str:
    known = states()
    return known[code].name if code in known else code


def _applies(
    rule: FamilyRule, case: Case, categories: Mapping[str, Sequence[str]]
) -> tuple[bool, str, str]:
    """Whether the rule's condition on the case holds; the subject and the reason if it does."""
    if not rule.when_case_has_any and rule.newborn_below_age is None:
        return True, "the applicant", ""
    for pid, cats in categories.items():
        hit = [c for c in rule.when_case_has_any if c in cats]
        if hit:
            return True, pid, ", ".join(hit)
    if rule.newborn_below_age is not None:
        for person in case.members:
            if person.age is not None and person.age < rule.newborn_below_age:
                return True, "the family", f"{person.id} is a new-born child"
    return False, "", ""


def _link_counts(
    rule: FamilyRule, link: FamilyLink, case: Case, rules: ResponsibilityRules
) -> bool:
    if link.relation not in rule.relations or link.status not in rule.statuses:
        return False
    if rule.requires_desire and not link.desired:
        return False
    if link.relation == "parent" and rules.parent_only_for_minors and not rule.when_case_has_any:
        # Art. 2(g): a parent is a family member only of a minor applicant.
        minors = screening_rules()
        return all(counts_as_minor(m, minors) for m in case.members)
    return True


def binding_destination(
    case: Case,
    screening: Screening,
    participating: Collection[str],
    rules: ResponsibilityRules | None = None,
) -> Binding | None:
    """The destination a family link binds the case to, or ``None`` if no family rule applies.

    The rules are tried in order (Regulation (EU) No 604/2013, Art. 7(1)); the first with a
    matching link decides. If links under that rule point to different states, the link given
    first wins, and the text says so. If the bound state is not in ``participating`` the
    binding is returned with ``available=False``.
    """
    return binding_of(case, screening.categories, participating, rules)


def binding_of(
    case: Case,
    categories: Mapping[str, Sequence[str]],
    participating: Collection[str],
    rules: ResponsibilityRules | None = None,
) -> Binding | None:
    """:func:`binding_destination` from the screening's categories alone (person id ->
    categories), which is all the family criteria read of it."""
    if not case.family_links:
        return None
    r = rules or responsibility_rules()
    for rule in r.rules:
        applies, subject, reason = _applies(rule, case, categories)
        if not applies:
            continue
        links = [link for link in case.family_links if _link_counts(rule, link, case, r)]
        if not links:
            continue
        chosen = links[0]
        text = rule.text.format(
            subject=subject,
            relation=chosen.relation,
            state=chosen.state,
            state_name=_state_name(chosen.state),
            status=r.status_text.get(chosen.status, chosen.status),
            reason=reason,
        )
        if text.startswith("the "):
            text = "T" + text[1:]
        text = f"{text} ({r.regulation}, {rule.article})."
        others = sorted({link.state for link in links} - {chosen.state})
        if others:
            text += (
                f" Links under {rule.article} also point to {', '.join(others)}; the link "
                f"given first ({chosen.state}) was chosen."
            )
        available = chosen.state in participating
        if not available:
            text += (
                f" {chosen.state} is not a participating destination: the case waits for its "
                "family link (waiting_link)."
            )
        return Binding(
            state=chosen.state,
            article=rule.article,
            text=text,
            available=available,
            rule=rule.id,
            link=chosen,
        )
    return None


def linked_groups(cases: Iterable[Case]) -> list[tuple[str, ...]]:
    """Cases that must go to the same destination: connected components of ``linked_cases``.

    Links are symmetric (Regulation (EU) No 604/2013, Art. 11: family members applying
    together are kept together). Groups come in the order of their first case, and cases in
    input order within a group; links to cases not given are ignored. Every case is in
    exactly one group (a case without links is a group of one).

    >>> from datetime import date
    >>> from fairshare.cases import Case, Person
    >>> def c(i, *links):
    ...     return Case(i, (Person("p" + i),), "EL", date(2015, 1, 1), linked_cases=links)
    >>> linked_groups([c("a", "c"), c("b"), c("c"), c("d", "c")])
    [('a', 'c', 'd'), ('b',)]
    """
    given = list(cases)
    linking = [case for case in given if case.linked_cases]
    known = {case.id for case in given}
    if not linking and len(known) == len(given):
        return [(case.id,) for case in given]
    # Union-find over the cases that are linked (every other case is a group of its own).
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for case in linking:
        for other in case.linked_cases:
            if other in known:
                a, b = find(case.id), find(other)
                if a != b:
                    parent[b] = a
    groups: dict[str, list[str]] = {}
    for case in given:
        cid = case.id
        groups.setdefault(find(cid) if cid in parent else cid, []).append(cid)
    return [tuple(ids) for ids in groups.values()]
