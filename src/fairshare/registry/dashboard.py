"""Read models for the dashboard: the queue, one case in full, capacities per state, batches.

These are queries only (the web layer knows no SQL). Scope is applied with the same filters
as the service functions (:mod:`fairshare.registry.scopes`); the caller decides which fields
a role may see and writes the audit event of a read of personal data
(:func:`fairshare.registry.audit.audit_read`) in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.orm import Session

from fairshare.cases import SERVICES
from fairshare.errors import InputError
from fairshare.registry.errors import NotFoundError
from fairshare.registry.models import (
    Assignment,
    Batch,
    Capacity,
    Case,
    CaseEvent,
    FamilyLinkRow,
    LinkedCase,
    Person,
    Screening,
    Transfer,
    User,
)
from fairshare.registry.scopes import Actor, case_scope_filter

__all__ = [
    "QUEUE_SORTS",
    "WAITING_STATUSES",
    "CaseDetail",
    "QueuePage",
    "QueueRow",
    "capacity_totals",
    "case_detail",
    "list_users",
    "queue_page",
    "recent_batches",
]

#: Cases not yet allocated: registered at the entry state and cared for there.
WAITING_STATUSES: tuple[str, ...] = ("registered", "screened", "ready")

#: Orders of the queue: the allocation's own order (most vulnerable, then longest waiting),
#: longest waiting first, or newest first.
QUEUE_SORTS: dict[str, str] = {
    "priority": "priority (tier, then waiting time)",
    "waiting": "longest waiting first",
    "newest": "newest first",
}


@dataclass(frozen=True)
class QueueRow:
    """One case in the queue (no personal data: counts, categories of need, dates)."""

    id: str
    entry_state: str
    registered_on: date
    status: str
    tier: int | None
    needs: dict[str, int]
    persons: int
    priority_reason: str | None
    allocated_to: str | None

    def waiting_days(self, today: date) -> int:
        """Days since registration."""
        return (today - self.registered_on).days


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class _Filters:
    statuses: tuple[str, ...]
    entry_state: str | None
    allocated_state: str | None
    tier: int | None
    need: str | None

    def apply(self, query: Select[Any], *, hint: bool = False) -> Select[Any]:
        in_status = Case.status.in_(self.statuses)
        # SQLite's likelihood(): the condition holds for most rows (hint=True, SQLite only).
        query = query.where(
            func.likelihood(in_status, literal_column("0.9")) if hint else in_status
        )
        if self.entry_state:
            query = query.where(Case.entry_state == self.entry_state)
        if self.allocated_state:
            query = query.where(Case.allocated_state == self.allocated_state)
        if self.tier is not None:
            query = query.where(Case.tier == self.tier)
        if self.need:
            if self.need not in SERVICES:
                raise InputError(f"unknown need '{self.need}'; use one of {', '.join(SERVICES)}")
            query = query.where(Case.needs[self.need].as_integer() > 0)
        return query


def queue_page(
    session: Session,
    actor: Actor,
    scope: str,
    *,
    statuses: tuple[str, ...] = WAITING_STATUSES,
    entry_state: str | None = None,
    allocated_state: str | None = None,
    tier: int | None = None,
    need: str | None = None,
    sort: str = "priority",
    offset: int = 0,
    limit: int = 50,
) -> QueuePage:
    """One page of the cases in ``statuses`` that ``actor`` may see under ``scope``."""
    if sort not in QUEUE_SORTS:
        raise InputError(f"unknown order '{sort}'; use one of {', '.join(QUEUE_SORTS)}")
    if not 1 <= limit <= 200 or offset < 0:
        raise InputError("limit must be 1 to 200 and offset 0 or more")
    where = _Filters(statuses, entry_state, allocated_state, tier, need)
    scoped = case_scope_filter(actor, scope)
    total = int(
        session.scalar(where.apply(select(func.count()).select_from(Case)).where(scoped)) or 0
    )
    sqlite = session.get_bind().dialect.name == "sqlite"
    # First the ids of the page, in the page's order and from an index: the tier is set at
    # registration from the declared categories (tier 3 without any) and revised by
    # screening, so it is never empty, and (tier, registered_on, id) serves the priority
    # order. The queue's statuses are most cases, so SQLite is told so (likelihood) and walks
    # the order's index instead of sorting every case.
    page = where.apply(select(Case.id), hint=sqlite).where(scoped)
    if sort == "priority":
        page = page.order_by(Case.tier, Case.registered_on, Case.id)
    elif sort == "waiting":
        page = page.order_by(Case.registered_on, Case.id)
    else:
        page = page.order_by(Case.registered_on.desc(), Case.id.desc())
    ids = list(session.scalars(page.offset(offset).limit(limit)))
    # Then those cases with their number of persons.
    persons = (
        select(func.count(Person.id)).where(Person.case_id == Case.id).scalar_subquery()
    ).label("persons")
    found = {
        case.id: (case, int(count))
        for case, count in session.execute(select(Case, persons).where(Case.id.in_(ids)))
    }
    rows = []
    for cid in ids:
        case, count = found[cid]
        rows.append(
            QueueRow(
                id=case.id,
                entry_state=case.entry_state,
                registered_on=case.registered_on,
                status=case.status,
                tier=case.tier,
                needs={k: int(v) for k, v in (case.needs or {}).items() if v},
                persons=count,
                priority_reason=case.priority_reason,
                allocated_to=case.allocated_to,
            )
        )
    return QueuePage(rows=rows, total=total, offset=offset, limit=limit)


@dataclass(frozen=True)
class CaseDetail:
    """Everything recorded about one case."""

    case: Case
    persons: list[Person]
    screenings: dict[str, list[Screening]]  # person id -> screenings, oldest first
    family_links: list[FamilyLinkRow]
    linked_cases: list[str]
    events: list[CaseEvent]
    assignment: Assignment | None
    transfer: Transfer | None


def case_detail(session: Session, actor: Actor, case_id: str, scope: str) -> CaseDetail:
    """One case with its members, screenings, links, timeline, allocation and transfer."""
    case = session.scalar(select(Case).where(Case.id == case_id, case_scope_filter(actor, scope)))
    if case is None:
        raise NotFoundError("case", case_id)
    persons = list(
        session.scalars(select(Person).where(Person.case_id == case_id).order_by(Person.id))
    )
    screenings: dict[str, list[Screening]] = {p.id: [] for p in persons}
    if persons:
        for row in session.scalars(
            select(Screening)
            .where(Screening.person_id.in_([p.id for p in persons]))
            .order_by(Screening.id)
        ):
            screenings[row.person_id].append(row)
    assignment = session.scalar(
        select(Assignment)
        .join(Batch, Batch.id == Assignment.batch_id)
        .where(Assignment.case_id == case_id)
        .order_by(Batch.created_at.desc())
        .limit(1)
    )
    return CaseDetail(
        case=case,
        persons=persons,
        screenings=screenings,
        family_links=list(
            session.scalars(select(FamilyLinkRow).where(FamilyLinkRow.case_id == case_id))
        ),
        linked_cases=list(
            session.scalars(select(LinkedCase.other_case_id).where(LinkedCase.case_id == case_id))
        ),
        events=list(
            session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            )
        ),
        assignment=assignment,
        transfer=session.scalar(
            select(Transfer)
            .where(Transfer.case_id == case_id)
            .order_by(Transfer.id.desc())
            .limit(1)
        ),
    )


def capacity_totals(session: Session) -> dict[str, dict[str, Any]]:
    """Free places and service places per state (regions added up), and participation.

    Counts of places only: no personal data, so every role that sees the overview may
    see them.
    """
    out: dict[str, dict[str, Any]] = {}
    for row in session.scalars(select(Capacity)):
        total = out.setdefault(
            row.state,
            {"free": 0, "services": dict.fromkeys(SERVICES, 0), "participating": False},
        )
        total["free"] += int(row.free)
        for name, places in row.services.items():
            total["services"][name] += places
        total["participating"] = bool(total["participating"] or row.participating)
    return out


def recent_batches(session: Session, limit: int = 5) -> list[Batch]:
    """The newest committed batches."""
    return list(session.scalars(select(Batch).order_by(Batch.created_at.desc()).limit(limit)))


def list_users(session: Session) -> list[User]:
    """Every account (no password hashes leave this function's callers' pages)."""
    return list(session.scalars(select(User).order_by(User.username)))
