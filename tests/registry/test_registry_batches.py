"""Allocation batches: previews store nothing, commits are consistent and serialised."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text

from fairshare.registry.db import session_scope
from fairshare.registry.errors import ConflictError
from fairshare.registry.models import Assignment, Batch, Capacity, Case, LedgerEntry
from fairshare.registry.services import (
    aggregates,
    audit_log,
    commit_batch,
    current_ledger,
    preview_batch,
    pseudonymised_export,
    register_case,
    set_ledger_baseline,
    transition,
)

from .helpers import ADMIN, COORD, REG_EL, REG_IT, TODAY, capacities, family, make_ready, row_counts


def _ready_families(
    engine: Engine, key: bytes, sizes: list[int], registrar: Any = REG_EL
) -> list[str]:
    ids = []
    for n in sizes:
        with session_scope(engine) as s:
            ids.append(
                register_case(
                    s,
                    registrar,
                    family(registrar.state, ages=(30,) * n),
                    fingerprint_key=key,
                    today=TODAY,
                ).case_id
            )
        make_ready(engine, ids[-1], registrar)
    return ids


def _check_consistent(
    engine: Engine,
    initial: dict[str, int],
    baseline: dict[str, int] | None = None,
    *,
    audit: bool = True,
) -> dict[str, int]:
    """The invariants of the booked state; returns persons placed per destination."""
    with session_scope(engine, readonly=True) as s:
        assignments = s.scalars(select(Assignment)).all()
        per_case = Counter(a.case_id for a in assignments)
        assert all(n == 1 for n in per_case.values()), "a case was allocated twice"
        allocated = set(s.scalars(select(Case.id).where(Case.status == "allocated")))
        assert allocated == set(per_case)
        placed: Counter[str] = Counter()
        for a in assignments:
            placed[a.destination] += a.persons
            case = s.get(Case, a.case_id)
            assert case is not None
            assert case.allocated_to == a.destination
            assert case.batch_id == a.batch_id
            assert case.transfer_deadline is not None
        for cap in s.scalars(select(Capacity)):
            assert cap.free >= 0
            assert cap.free == initial[cap.destination_id] - placed[cap.destination_id]
        received, _ = current_ledger(s)
        base = baseline or {}
        expected = {d: base.get(d, 0) + placed.get(d, 0) for d in set(base) | set(placed)}
        assert {d: n for d, n in received.items() if n} == {d: n for d, n in expected.items() if n}
        batches = s.scalar(select(func.count()).select_from(Batch))
        if not audit:  # the audit trail is append-only: it outlives wiped test data
            return dict(placed)
        assert len(audit_log(s, action="batch.committed", limit=1000)) == batches
        assert len(audit_log(s, action="case.allocated", limit=1000)) == len(assignments)
    return dict(placed)


def test_preview_stores_nothing(engine: Engine, fingerprint_key: bytes) -> None:
    _ready_families(engine, fingerprint_key, [2, 1, 3])
    capacities(engine, {"DE": 4, "SE": 2})
    before = row_counts(engine)
    with session_scope(engine) as s:
        preview = preview_batch(s, COORD, 11, today=TODAY)
    assert row_counts(engine) == before
    doc = preview.document
    assert len(doc["assignments"]) == 3
    assert {d["id"] for d in doc["destinations"]} == {"DE", "SE"}
    assert all(a["reasons"] for a in doc["assignments"])
    with session_scope(engine) as s:
        again = preview_batch(s, COORD, 11, today=TODAY)
    assert again.document == doc  # same state + seed -> the same result


def test_commit_books_everything_consistently(engine: Engine, fingerprint_key: bytes) -> None:
    ids = _ready_families(engine, fingerprint_key, [2, 1, 3, 4])
    capacities(engine, {"DE": 5, "SE": 3}, {"DE": {"medical": 1}})
    with session_scope(engine) as s:
        set_ledger_baseline(s, ADMIN, {"DE": 10, "SE": 1}, largest_case=2)
    with session_scope(engine) as s:
        preview = preview_batch(s, COORD, 3, today=TODAY)
    with session_scope(engine) as s:
        batch = commit_batch(s, COORD, 3, today=TODAY)
    assert batch.document == preview.document
    placed = [a for a in batch.document["assignments"] if a["destination"]]
    assert sorted(batch.allocated) == sorted(a["case"] for a in placed)
    assert sum(a["persons"] for a in placed) <= 8
    with session_scope(engine, readonly=True) as s:
        received, largest = current_ledger(s)
        summary = s.get(Batch, batch.batch_id)
        assert summary is not None
        rows = {r["id"]: r for r in summary.summary["destinations"]}
        assert rows["DE"]["before"] == 10
        assert "deviation_before" in rows["DE"]
        assert "deviation_after" in rows["DE"]
        assert largest >= 2
        waiting = [c for c in ids if c not in batch.allocated]
        statuses = {c: s.get(Case, c).status for c in ids}  # type: ignore[union-attr]
        assert all(statuses[c] == "ready" for c in waiting)
        # aggregates and exports carry no names
        agg = aggregates(s)
        assert "Given0" not in str(agg)
    placed_by = _check_consistent(engine, {"DE": 5, "SE": 3}, {"DE": 10, "SE": 1})
    assert received == {d: {"DE": 10, "SE": 1}[d] + placed_by.get(d, 0) for d in ("DE", "SE")}
    with session_scope(engine) as s:
        rows_out = pseudonymised_export(s, ADMIN, key=b"p" * 32, today=TODAY)
    assert "Given" not in str(rows_out)
    assert "EL-2026" not in str(rows_out)
    # a second commit finds nothing left that fits, and never re-allocates
    with session_scope(engine) as s:
        second = commit_batch(s, COORD, 4, today=TODAY)
    assert set(second.allocated).isdisjoint(batch.allocated)
    _check_consistent(engine, {"DE": 5, "SE": 3}, {"DE": 10, "SE": 1})


def test_linked_cases_wait_for_each_other(engine: Engine, fingerprint_key: bytes) -> None:
    capacities(engine, {"DE": 10})
    with session_scope(engine) as s:
        a = register_case(s, REG_EL, family(id="A"), fingerprint_key=fingerprint_key, today=TODAY)
        register_case(
            s,
            REG_EL,
            family(id="B", linked_cases=["A"]),
            fingerprint_key=fingerprint_key,
            today=TODAY,
        )
    make_ready(engine, "B")
    with session_scope(engine) as s:
        preview = preview_batch(s, COORD, 1, today=TODAY)
    assert preview.case_ids == []
    assert preview.held_back[0]["case"] == "B"
    make_ready(engine, a.case_id)
    with session_scope(engine) as s:
        batch = commit_batch(s, COORD, 1, today=TODAY)
    assert sorted(batch.allocated) == ["A", "B"]


def test_commit_refuses_a_case_that_left_ready(engine: Engine, fingerprint_key: bytes) -> None:
    [case_id] = _ready_families(engine, fingerprint_key, [1])
    capacities(engine, {"DE": 3})
    with session_scope(engine) as s:
        # simulate a change between the engine's read and the booking
        s.execute(text("SELECT 1"))
        original = commit_batch.__globals__["_problem"]

        def sneaky(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            s.execute(text("UPDATE cases SET status = 'withdrawn' WHERE id = :id"), {"id": case_id})
            return out

        commit_batch.__globals__["_problem"] = sneaky
        try:
            with pytest.raises(ConflictError, match="no longer ready"):
                commit_batch(s, COORD, 1, today=TODAY)
        finally:
            commit_batch.__globals__["_problem"] = original
        s.rollback()
    _check_consistent(engine, {"DE": 3})


def test_parallel_commits_and_registrations(engine: Engine, fingerprint_key: bytes) -> None:
    initial = {"DE": 9, "SE": 5, "FR": 4}
    _ready_families(engine, fingerprint_key, [2, 3, 1, 2, 2, 4, 1, 3, 2, 1])
    capacities(engine, initial)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []
    committed: list[list[str]] = []

    def coordinator(seed: int) -> None:
        try:
            barrier.wait()
            for round_ in range(2):
                with session_scope(engine) as s:
                    committed.append(
                        commit_batch(s, COORD, seed * 10 + round_, today=TODAY).allocated
                    )
        except BaseException as exc:
            errors.append(exc)

    def registrar(actor: Any) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                with session_scope(engine) as s:
                    cid = register_case(
                        s,
                        actor,
                        family(actor.state, ages=(40, 12)),
                        fingerprint_key=fingerprint_key,
                        today=TODAY,
                    ).case_id
                with session_scope(engine) as s:
                    transition(s, actor, cid, "screened")
                    transition(s, actor, cid, "ready")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=coordinator, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=registrar, args=(a,)) for a in (REG_EL, REG_IT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    all_allocated = [c for batch in committed for c in batch]
    assert len(all_allocated) == len(set(all_allocated))
    placed = _check_consistent(engine, initial)
    assert all(placed.get(d, 0) <= n for d, n in initial.items())
    with session_scope(engine, readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 16


_DATA_TABLES = (
    "assignments",
    "ledger",
    "transfers",
    "case_events",
    "screenings",
    "documents",
    "family_links",
    "linked_cases",
    "persons",
    "cases",
    "batches",
    "capacities",
    "case_sequences",
    "idempotency_keys",
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=6),
    free=st.fixed_dictionaries({"DE": st.integers(0, 8), "SE": st.integers(0, 5)}),
    seed=st.integers(0, 2**32),
)
def test_commit_never_exceeds_a_capacity(
    engine: Engine, fingerprint_key: bytes, sizes: list[int], free: dict[str, int], seed: int
) -> None:
    with session_scope(engine) as s:
        for table in _DATA_TABLES:
            s.execute(text(f"DELETE FROM {table}"))
    _ready_families(engine, fingerprint_key, sizes)
    capacities(engine, free)
    with session_scope(engine) as s:
        batch = commit_batch(s, COORD, seed, today=TODAY)
    placed = _check_consistent(engine, free, audit=False)
    assert sum(placed.values()) == sum(
        a["persons"] for a in batch.document["assignments"] if a["destination"]
    )
    with session_scope(engine, readonly=True) as s:
        ledger_total = s.scalar(select(func.coalesce(func.sum(LedgerEntry.placed), 0)))
    assert ledger_total == sum(placed.values())
