"""Stored rows back into the pure core's domain types (for screening and the engine)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from fairshare.cases import Case as DomainCase
from fairshare.cases import Exclusion, FamilyLink
from fairshare.cases import Person as DomainPerson
from fairshare.registry.models import Case, FamilyLinkRow, Person

__all__ = ["domain_case", "person_age"]


def person_age(person: Person, today: date | None) -> int | None:
    """The age to use: from the birth date on ``today`` if both are known, else the stored age."""
    if person.birth_date is not None and today is not None:
        born = person.birth_date
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return person.age


def domain_case(
    case: Case,
    persons: Sequence[Person],
    links: Iterable[FamilyLinkRow],
    linked: Iterable[str],
    *,
    today: date | None,
) -> DomainCase:
    """The :class:`fairshare.cases.Case` of a stored case (person ids are the stored ids)."""
    return DomainCase(
        id=case.id,
        members=tuple(
            DomainPerson(
                id=p.id,
                age=person_age(p, today),
                sex=p.sex,
                age_uncertain=p.age_uncertain,
                nationality=p.nationality,
                languages=tuple(p.languages),
                vulnerabilities=tuple(p.vulnerabilities),
                unhcr_codes=tuple(p.unhcr_codes),
            )
            for p in sorted(persons, key=lambda p: p.id)
        ),
        entry_state=case.entry_state,
        registered_on=case.registered_on,
        family_links=tuple(
            FamilyLink(state=k.state, relation=k.relation, status=k.status, desired=k.desired)
            for k in links
        ),
        linked_cases=tuple(linked),
        preferences=tuple(case.preferences),
        scores={str(k): float(v) for k, v in case.scores.items()},
        excluded=tuple(Exclusion(state=e["state"], reason=e["reason"]) for e in case.excluded),
    )
