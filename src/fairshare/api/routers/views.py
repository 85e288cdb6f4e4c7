"""Records as response dicts: built in bulk (no query per row), then projected per role."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairshare.api.permissions import Permission, Role, is_allowed
from fairshare.api.schemas import project
from fairshare.registry.models import Case, CaseEvent, Document, LinkedCase, Person, Screening

__all__ = ["case_views", "event_view", "is_case_overdue", "person_views"]

_OPEN = ("allocated", "transfer_scheduled")


def is_case_overdue(case: Case, today: date) -> bool:
    """Allocated, not yet transferred, and past its transfer deadline."""
    return (
        case.status in _OPEN
        and case.transfer_deadline is not None
        and today > case.transfer_deadline
    )


def event_view(e: CaseEvent) -> dict[str, Any]:
    """One step of a case's status timeline."""
    return {
        "from": e.from_status,
        "to": e.to_status,
        "by": e.by,
        "role": e.role,
        "at": e.at.isoformat(),
        "reason": e.reason,
    }


def person_views(
    session: Session, role: Role, persons: Sequence[Person], cases: dict[str, Case]
) -> list[dict[str, Any]]:
    """The persons as ``role`` may see them (identity and Art. 9 data only with the grants)."""
    pids = [p.id for p in persons]
    identity = is_allowed(role, Permission.persons_read)
    special = is_allowed(role, Permission.persons_special)
    docs: dict[str, list[dict[str, Any]]] = {}
    screenings: dict[str, list[Screening]] = {}
    if identity and pids:
        for d in session.scalars(
            select(Document).where(Document.person_id.in_(pids)).order_by(Document.id)
        ):
            docs.setdefault(d.person_id, []).append(
                {"kind": d.kind, "issuing_state": d.issuing_state, "number": d.number}
            )
    if special and pids:
        for s in session.scalars(
            select(Screening).where(Screening.person_id.in_(pids)).order_by(Screening.id)
        ):
            screenings.setdefault(s.person_id, []).append(s)
    out = []
    for p in persons:
        case = cases.get(p.case_id)
        own = screenings.get(p.id, [])
        record: dict[str, Any] = {
            "id": p.id,
            "case_id": p.case_id,
            "age": p.age,
            "age_uncertain": p.age_uncertain,
            "languages": list(p.languages),
            "nationality": p.nationality,
        }
        if identity:
            record.update(
                given_names=p.given_name,
                family_name=p.family_name,
                birth_date=p.birth_date,
                sex=p.sex,
                documents=docs.get(p.id, []),
                reception_place=case.reception_place if case else None,
                child_protection_referral=case.child_protection_referral if case else None,
            )
        if special:
            record.update(
                vulnerabilities=list(p.vulnerabilities),
                unhcr_codes=list(p.unhcr_codes),
                medical_needs=case.medical_needs if case else None,
                screening=[
                    {
                        "id": s.id,
                        "categories": list(s.categories),
                        "unhcr_codes": list(s.unhcr_codes),
                        "place_of_safety_referral": s.place_of_safety_referral,
                        "age_assessed": s.age_assessed,
                        "assessed_by": s.assessed_by,
                        "assessed_at": s.assessed_at.isoformat(),
                    }
                    for s in own
                ],
                trafficking_indicators=sorted({t for s in own for t in s.trafficking_indicators}),
                support_notes=[s.advice_and_support for s in own if s.advice_and_support],
            )
        out.append(project(record, role, "persons"))
    return out


def case_views(
    session: Session, role: Role, cases: Sequence[Case], today: date
) -> list[dict[str, Any]]:
    """The cases as ``role`` may see them, members included (in a few bulk queries)."""
    ids = [c.id for c in cases]
    if not ids:
        return []
    by_id = {c.id: c for c in cases}
    persons = session.scalars(
        select(Person).where(Person.case_id.in_(ids)).order_by(Person.id)
    ).all()
    members: dict[str, list[dict[str, Any]]] = {}
    for view in person_views(session, role, persons, by_id):
        members.setdefault(str(view["case_id"]), []).append(view)
    linked: dict[str, list[str]] = {}
    for link in session.scalars(select(LinkedCase).where(LinkedCase.case_id.in_(ids))):
        linked.setdefault(link.case_id, []).append(link.other_case_id)
    history: dict[str, list[dict[str, Any]]] = {}
    for e in session.scalars(
        select(CaseEvent).where(CaseEvent.case_id.in_(ids)).order_by(CaseEvent.id)
    ):
        history.setdefault(e.case_id, []).append(event_view(e))
    out = []
    for c in cases:
        own = members.get(c.id, [])
        record = {
            "id": c.id,
            "entry_state": c.entry_state,
            "registered_on": c.registered_on,
            "status": c.status,
            "size": len(own),
            "needs": dict(c.needs or {}),
            "tier": c.tier,
            "linked_cases": sorted(linked.get(c.id, [])),
            "preferences": list(c.preferences or []),
            "excluded": list(c.excluded or []),
            "allocated_to": c.allocated_to,
            "allocated_on": c.allocated_on,
            "transfer_deadline": c.transfer_deadline,
            "overdue": is_case_overdue(c, today),
            "history": history.get(c.id, []),
            "version": c.version,
            "members": own,
        }
        out.append(project(record, role, "cases"))
    return out
