"""Seed a test registry directly through the service functions (fast, one transaction)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from fairshare.api.security import hash_password
from fairshare.registry.db import session_scope
from fairshare.registry.models import Assignment, AuditEvent, Batch, Capacity, Case, Person
from fairshare.registry.services import (
    Actor,
    bulk_import,
    create_user,
    current_ledger,
    set_capacity,
    transition,
)

from .server import family_body

PASSWORD = "correct horse battery staple"
ADMIN = Actor("test-setup", "admin")
USERS = {
    "coordinator": ("coordinator", None),
    "coordinator2": ("coordinator", None),
    "registrar.el": ("registrar", "EL"),
    "registrar.it": ("registrar", "IT"),
}


def users(engine: Engine) -> None:
    with session_scope(engine) as s:
        for name, (role, state) in USERS.items():
            create_user(
                s,
                ADMIN,
                username=name,
                password_hash=hash_password(PASSWORD, name),
                role=role,
                state=state,
            )


def ready_cases(
    engine: Engine, key: bytes, sizes: list[int], entry_state: str = "EL", tag: str = "r"
) -> list[str]:
    """Register families of ``sizes`` at ``entry_state`` and make them ready."""
    registrar = Actor(f"registrar.{entry_state.lower()}", "registrar", entry_state)
    bodies = [family_body(entry_state, n, f"{tag}{i}") for i, n in enumerate(sizes)]
    with session_scope(engine) as s:
        report = bulk_import(s, registrar, bodies, fingerprint_key=key)
        assert report.ok, report.errors
        for cid in report.imported:
            transition(s, registrar, cid, "screened")
            transition(s, registrar, cid, "ready")
    return report.imported


def capacities(engine: Engine, free: dict[str, int]) -> None:
    with session_scope(engine) as s:
        for dest, n in free.items():
            set_capacity(s, ADMIN, dest, free=n)


@dataclass(frozen=True)
class Snapshot:
    """What the invariants compare: statuses, versions, capacities, ledger, audit."""

    status: dict[str, str]
    version: dict[str, int]
    free: dict[str, int]
    received: dict[str, int]
    placed: dict[str, int]
    assignments: Counter[str]
    allocated_events: Counter[str]
    batches: int
    batch_events: int


def snapshot(engine: Engine) -> Snapshot:
    with session_scope(engine, readonly=True) as s:
        status = dict(s.execute(select(Case.id, Case.status)).all())
        version = dict(s.execute(select(Case.id, Case.version)).all())
        free = dict(s.execute(select(Capacity.destination_id, Capacity.free)).all())
        received, _ = current_ledger(s)
        placed: Counter[str] = Counter()
        assignments: Counter[str] = Counter()
        for case_id, dest, persons in s.execute(
            select(Assignment.case_id, Assignment.destination, Assignment.persons)
        ):
            placed[dest] += persons
            assignments[case_id] += 1
        allocated_events = Counter(
            s.scalars(
                select(AuditEvent.resource_id).where(AuditEvent.action == "case.allocated")
            ).all()
        )
        batches = int(s.scalar(select(func.count()).select_from(Batch)) or 0)
        batch_events = int(
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "batch.committed")
            )
            or 0
        )
    return Snapshot(
        status,
        version,
        free,
        received,
        dict(placed),
        assignments,
        allocated_events,
        batches,
        batch_events,
    )


def persons_per_case(engine: Engine) -> dict[str, int]:
    with session_scope(engine, readonly=True) as s:
        return dict(s.execute(select(Person.case_id, func.count()).group_by(Person.case_id)).all())


def check_consistent(before: Snapshot, after: Snapshot, sizes: dict[str, int]) -> set[str]:
    """Every case as before or newly allocated; capacities, ledger and audit agree.

    Returns the cases allocated between the two snapshots.
    """
    newly = {
        c
        for c, st in after.status.items()
        if st == "allocated" and before.status.get(c) != "allocated"
    }
    for case_id, st in before.status.items():
        if case_id in newly:
            assert st == "ready", f"{case_id} was {st}, not ready, and is now allocated"
            continue
        assert after.status[case_id] == st, f"{case_id}: {st} -> {after.status[case_id]}"
        assert after.version[case_id] == before.version[case_id], case_id
    # One assignment and one audit event per allocated case, none twice.
    assert all(n == 1 for n in after.assignments.values()), "a case was allocated twice"
    assert set(after.assignments) == {c for c, st in after.status.items() if st == "allocated"}
    assert after.allocated_events == after.assignments, "audit events != assignments"
    assert after.batches == after.batch_events
    if not newly:
        assert after.batches == before.batches
    # Persons placed per state = capacity decrease = ledger increase.
    by_dest: Counter[str] = Counter()
    for case_id in newly:
        assert case_id in after.assignments
    for dest in set(before.free) | set(after.free):
        decrease = before.free.get(dest, 0) - after.free.get(dest, 0)
        increase = after.received.get(dest, 0) - before.received.get(dest, 0)
        new_placed = after.placed.get(dest, 0) - before.placed.get(dest, 0)
        by_dest[dest] = new_placed
        assert after.free.get(dest, 0) >= 0
        assert decrease == increase == new_placed, (dest, decrease, increase, new_placed)
    assert sum(by_dest.values()) == sum(sizes[c] for c in newly)
    return newly
