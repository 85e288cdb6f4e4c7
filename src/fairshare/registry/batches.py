"""Allocation batches: preview (a dry run) and commit (one serialised transaction).

The engine is the pure :func:`fairshare.allocate.allocate`; this module only feeds it the
registry's state and books its result:

* input: the cases in status ``ready`` (or the ``case_ids`` given, which must be ready),
  the current capacities (free places and service places) and the ledger (persons received
  per destination so far, and M, the largest case allocated so far);
* :func:`preview_batch` stores nothing and returns the engine's full document (every case's
  reasons, fairness before and after);
* :func:`commit_batch` does the same under a lock (PostgreSQL: ``pg_advisory_xact_lock``;
  SQLite: the write lock taken by ``BEGIN IMMEDIATE``), so two coordinators committing at
  once are serialised; then, in the same transaction, it moves each placed case
  ``ready -> allocated`` with a guarded ``UPDATE ... WHERE status = 'ready'`` (a case can
  never be allocated twice), decrements capacities and service places with guarded updates
  (never below 0; the database CHECKs back this up), sets each transfer deadline
  (:func:`fairshare.workflow.transfer_deadline`, 6 months by default, Regulation (EU)
  No 604/2013 Art. 29(1)), appends to the ledger and writes the audit events.

Linked cases (Regulation (EU) No 604/2013 Art. 11) go together: a ready case whose linked
case is registered but not yet ready is held back from the batch (listed in ``held_back``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from fairshare.allocate import allocate
from fairshare.cases import SERVICES, AllocationInput, parse_destinations
from fairshare.errors import InputError
from fairshare.registry.audit import record_event
from fairshare.registry.errors import CapacityExceededError, ConflictError
from fairshare.registry.models import (
    SERVICE_COLUMNS,
    Assignment,
    Batch,
    Capacity,
    Case,
    CaseEvent,
    FamilyLinkRow,
    LedgerEntry,
    LinkedCase,
    Person,
    utcnow,
)
from fairshare.registry.scopes import Actor
from fairshare.registry.snapshot import domain_case
from fairshare.workflow import transfer_deadline

__all__ = [
    "BATCH_LOCK_KEY",
    "DEFAULT_KEY",
    "BatchCommit",
    "BatchPreview",
    "commit_batch",
    "current_ledger",
    "preview_batch",
    "set_ledger_baseline",
]

DEFAULT_KEY: Mapping[str, Any] = {"name": "population"}
"""The distribution key used unless a batch names another (see ``fairshare keys``)."""

BATCH_LOCK_KEY = 0x66616972  # "fair"
"""The PostgreSQL advisory lock that serialises batch commits."""

_WAITING_LINK = ("registered", "screened")


@dataclass
class BatchPreview:
    """What the engine would do: its whole output document, and the cases held back."""

    document: dict[str, Any]
    case_ids: list[str]
    held_back: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"document": self.document, "case_ids": self.case_ids, "held_back": self.held_back}


@dataclass
class BatchCommit(BatchPreview):
    """A committed batch: its id, the cases allocated and the stored summary."""

    batch_id: str = ""
    allocated: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            **super().to_dict(),
            "batch_id": self.batch_id,
            "allocated": self.allocated,
            "summary": self.summary,
        }


def current_ledger(session: Session) -> tuple[dict[str, int], int]:
    """Persons received per destination so far, and M (the largest case allocated so far)."""
    latest = (
        select(LedgerEntry.destination_id, func.max(LedgerEntry.id).label("last"))
        .group_by(LedgerEntry.destination_id)
        .subquery()
    )
    rows = session.execute(
        select(LedgerEntry.destination_id, LedgerEntry.received).join(
            latest, LedgerEntry.id == latest.c.last
        )
    ).all()
    largest = session.scalar(select(func.max(LedgerEntry.largest_case))) or 0
    return {d: int(r) for d, r in rows}, int(largest)


def set_ledger_baseline(
    session: Session, actor: Actor, received: Mapping[str, int], *, largest_case: int = 0
) -> None:
    """Start (or correct) the ledger: persons already received per destination, and M.

    For a registry that takes over from earlier allocations (e.g. the 2015 relocation
    scheme's figures); audited.
    """
    before, m = current_ledger(session)
    for dest, count in received.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InputError(f"received for {dest}: {count!r} is not a whole number of 0 or more")
    if isinstance(largest_case, bool) or not isinstance(largest_case, int) or largest_case < 0:
        raise InputError(f"largest_case {largest_case!r} is not a whole number of 0 or more")
    now = utcnow()
    for dest, count in sorted(received.items()):
        session.add(
            LedgerEntry(
                batch_id=None,
                destination_id=dest,
                placed=count - before.get(dest, 0),
                received=count,
                largest_case=max(m, largest_case),
                at=now,
            )
        )
    record_event(
        session,
        actor,
        "ledger.baseline",
        "ledger",
        None,
        detail={"received": dict(received), "largest_case": largest_case},
    )


def _select_cases(
    session: Session, case_ids: Sequence[str] | None
) -> tuple[list[Case], list[dict[str, str]]]:
    query = select(Case).where(Case.status == "ready").order_by(Case.id)
    held: list[dict[str, str]] = []
    if case_ids is not None:
        wanted = list(dict.fromkeys(case_ids))
        query = query.where(Case.id.in_(wanted))
        cases = list(session.scalars(query))
        found = {c.id for c in cases}
        for cid in wanted:
            if cid not in found:
                held.append({"case": cid, "reason": "not found or not in status 'ready'"})
    else:
        cases = list(session.scalars(query))
    ids = {c.id for c in cases}
    links = session.execute(
        select(LinkedCase.case_id, LinkedCase.other_case_id).where(
            or_(LinkedCase.case_id.in_(ids), LinkedCase.other_case_id.in_(ids))
        )
    ).all()
    others = {o for pair in links for o in pair} - ids
    status_of: dict[str, str] = dict(
        session.execute(select(Case.id, Case.status).where(Case.id.in_(others))).all()
    )
    blocked: set[str] = set()
    changed = True
    while changed:
        changed = False
        for a, b in links:
            for me, other in ((a, b), (b, a)):
                if me not in ids or me in blocked:
                    continue
                other_waits = other in blocked or (
                    other not in ids and status_of.get(other) in (*_WAITING_LINK, "ready")
                )
                if other_waits:
                    blocked.add(me)
                    held.append(
                        {
                            "case": me,
                            "reason": f"linked case '{other}' is not ready in this batch; "
                            "linked family members go together (Regulation (EU) No 604/2013 "
                            "Art. 11)",
                        }
                    )
                    changed = True
    return [c for c in cases if c.id not in blocked], held


def _problem(
    session: Session,
    case_ids: Sequence[str] | None,
    key: Mapping[str, Any] | None,
    seed: int,
    today: date,
) -> tuple[AllocationInput, list[Case], list[dict[str, str]], list[Capacity]]:
    cases, held = _select_cases(session, case_ids)
    capacities = list(session.scalars(select(Capacity).order_by(Capacity.destination_id)))
    if not capacities:
        raise ConflictError(
            "no capacities are recorded; capacity managers must set their free places first"
        )
    destinations = parse_destinations(
        [
            {
                "id": c.destination_id,
                **({"parent": c.parent} if c.parent else {}),
                "capacity": c.free,
                "services": {s: min(n, c.free) for s, n in c.services.items() if n},
                "languages": list(c.languages),
                "nationalities": list(c.nationalities),
                "participating": c.participating,
            }
            for c in capacities
        ]
    )
    ids = [c.id for c in cases]
    persons: dict[str, list[Person]] = {}
    for p in session.scalars(select(Person).where(Person.case_id.in_(ids))):
        persons.setdefault(p.case_id, []).append(p)
    links: dict[str, list[FamilyLinkRow]] = {}
    for link in session.scalars(
        select(FamilyLinkRow).where(FamilyLinkRow.case_id.in_(ids)).order_by(FamilyLinkRow.id)
    ):
        links.setdefault(link.case_id, []).append(link)
    chosen = set(ids)
    linked: dict[str, list[str]] = {}
    for a, b in session.execute(
        select(LinkedCase.case_id, LinkedCase.other_case_id).where(LinkedCase.case_id.in_(ids))
    ):
        if b in chosen:
            linked.setdefault(a, []).append(b)
    received, largest = current_ledger(session)
    problem = AllocationInput(
        key=dict(key or DEFAULT_KEY),
        received=received,
        destinations=tuple(destinations),
        cases=tuple(
            domain_case(
                c, persons.get(c.id, []), links.get(c.id, []), linked.get(c.id, []), today=today
            )
            for c in cases
        ),
        seed=seed,
        largest_case=largest,
    )
    return problem, cases, held, capacities


def preview_batch(
    session: Session,
    actor: Actor,
    seed: int,
    case_ids: Sequence[str] | None = None,
    *,
    key: Mapping[str, Any] | None = None,
    today: date | None = None,
) -> BatchPreview:
    """A dry run: what committing now would do. Stores nothing (not even an audit event)."""
    problem, cases, held, _ = _problem(session, case_ids, key, seed, today or date.today())
    document = allocate(problem, seed=seed).to_dict()
    return BatchPreview(document=document, case_ids=[c.id for c in cases], held_back=held)


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BATCH_LOCK_KEY})
    # SQLite: the session's BEGIN IMMEDIATE already holds the database's write lock.


def _summary(document: Mapping[str, Any], allocated: int, persons: int) -> dict[str, Any]:
    dests = document["destinations"]
    total_before = sum(d["before"] for d in dests if d["share"] is not None)
    rows = []
    for d in dests:
        share = d["share"]
        before_dev = None if share is None else d["before"] - share * total_before
        rows.append(
            {
                "id": d["id"],
                "state": d["state"],
                "share": share,
                "before": d["before"],
                "placed": d["placed"],
                "after": d["after"],
                "fair_share_after": d["fair_share"],
                "deviation_before": before_dev,
                "deviation_after": d["deviation"],
                "within_bound": d["within_bound"],
                "free_after": d["free_after"],
            }
        )
    objective = document["objective"]
    return {
        "key": document["key"],
        "seed": document["seed"],
        "cases_allocated": allocated,
        "persons_allocated": persons,
        "waiting": document["waiting"],
        "M": objective["M"],
        "within_M": objective["within_M"],
        "max_abs_deviation": objective["max_abs_deviation"],
        "destinations": rows,
    }


def commit_batch(
    session: Session,
    actor: Actor,
    seed: int,
    case_ids: Sequence[str] | None = None,
    *,
    key: Mapping[str, Any] | None = None,
    deadline_months: int | None = None,
    today: date | None = None,
) -> BatchCommit:
    """Allocate and book one batch in the caller's transaction, serialised with other commits.

    Raises :class:`~fairshare.registry.errors.ConflictError` (nothing is booked) if a case
    left ``ready`` or a capacity dropped while the batch was computed; preview and retry.
    """
    day = today or date.today()
    _lock(session)
    problem, cases, held, capacities = _problem(session, case_ids, key, seed, day)
    document = allocate(problem, seed=seed).to_dict()
    deadline = transfer_deadline(day, deadline_months)
    now = utcnow()
    batch_id = f"B-{day:%Y%m%d}-{secrets.token_hex(4)}"
    session.add(
        Batch(
            id=batch_id,
            coordinator=actor.username,
            created_at=now,
            seed=seed,
            status="committed",
            key=dict(problem.key),
            summary={},
        )
    )
    session.flush()
    by_id = {c.id: c for c in cases}
    placed = [a for a in document["assignments"] if a["destination"] is not None]
    allocated: list[str] = []
    for a in placed:
        case = by_id[a["case"]]
        done = session.execute(
            update(Case)
            .where(Case.id == case.id, Case.status == "ready")
            .values(
                status="allocated",
                status_changed_at=now,
                version=Case.version + 1,
                allocated_to=a["destination"],
                allocated_state=a["state"],
                batch_id=batch_id,
                allocated_on=day,
                transfer_deadline=deadline,
                tier=a["tier"],
            )
            .returning(Case.id)
        ).all()
        if not done:
            raise ConflictError(
                f"case '{case.id}' is no longer ready (changed while the batch was computed); "
                "nothing was committed: preview the batch again"
            )
        allocated.append(case.id)
    if placed:
        session.execute(
            insert(Assignment),
            [
                {
                    "batch_id": batch_id,
                    "case_id": a["case"],
                    "destination": a["destination"],
                    "state": a["state"],
                    "persons": a["persons"],
                    "reasons": a["reasons"],
                }
                for a in placed
            ],
        )
        session.execute(
            insert(CaseEvent),
            [
                {
                    "case_id": a["case"],
                    "from_status": "ready",
                    "to_status": "allocated",
                    "by": actor.username,
                    "role": actor.role,
                    "at": now,
                    "reason": f"batch {batch_id}",
                }
                for a in placed
            ],
        )
    caps = {c.destination_id: c for c in capacities}
    largest = max([problem.largest_case, *(a["persons"] for a in placed)])
    received, _ = current_ledger(session)
    for d in document["destinations"]:
        if not d["placed"]:
            continue
        cap = caps[d["id"]]
        used = cap.free - d["free_after"]
        used_services = {
            s: cap.services[s] - d["services_free_after"].get(s, cap.services[s]) for s in SERVICES
        }
        conditions = [Capacity.destination_id == d["id"], Capacity.free >= used]
        values: dict[str, Any] = {
            "free": Capacity.free - used,
            "version": Capacity.version + 1,
            "updated_by": actor.username,
            "updated_at": now,
        }
        remaining = Capacity.free - used
        for s, n in used_services.items():
            column = getattr(Capacity, SERVICE_COLUMNS[s])
            if n:
                conditions.append(column >= n)
            # Service places are a subset of the free places: never more than remain.
            values[SERVICE_COLUMNS[s]] = sql_case(
                (column - n > remaining, remaining), else_=column - n
            )
        done = session.execute(
            update(Capacity).where(*conditions).values(**values).returning(Capacity.destination_id)
        ).all()
        if not done:
            raise CapacityExceededError(
                f"{d['id']} no longer has {used} free places (or its service places) for this "
                "batch; its capacity changed meanwhile. Nothing was committed: preview again"
            )
        session.add(
            LedgerEntry(
                batch_id=batch_id,
                destination_id=d["id"],
                placed=d["placed"],
                received=received.get(d["id"], 0) + d["placed"],
                largest_case=largest,
                at=now,
            )
        )
    persons = sum(a["persons"] for a in placed)
    summary = _summary(document, len(placed), persons)
    session.execute(update(Batch).where(Batch.id == batch_id).values(summary=summary))
    record_event(
        session,
        actor,
        "batch.committed",
        "batch",
        batch_id,
        detail={
            "cases": len(placed),
            "persons": persons,
            "seed": seed,
            "waiting": document["waiting"]["cases"],
            "held_back": len(held),
        },
    )
    for a in placed:
        record_event(
            session,
            actor,
            "case.allocated",
            "case",
            a["case"],
            state=by_id[a["case"]].entry_state,
            detail={
                "batch": batch_id,
                "destination": a["destination"],
                "deadline": deadline.isoformat(),
            },
        )
    return BatchCommit(
        document=document,
        case_ids=[c.id for c in cases],
        held_back=held,
        batch_id=batch_id,
        allocated=allocated,
        summary=summary,
    )
