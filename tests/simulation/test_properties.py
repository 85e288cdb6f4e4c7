"""Invariants of the vectorised allocation, as Hypothesis properties.

Under a key, where capacity allows, every state's cumulative total stays within M (the
largest family allocated so far) of its fair share after every step, and no family is split.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fairshare.simulation.cohorts import KeyLedger, lottery_rank, waterfill
from fairshare.simulation.policies import allocate_by_key

weights_st = st.lists(st.integers(1, 10_000), min_size=1, max_size=8)
day_st = st.lists(
    st.tuples(st.integers(1, 9), st.integers(0, 2), st.integers(0, 12)), min_size=0, max_size=12
)


def _cases(day: list[tuple[int, int, int]], entry_states: int) -> np.ndarray:
    cases = np.zeros((entry_states, 9, 3), dtype=np.int64)
    for i, (size, tier, count) in enumerate(day):
        cases[i % entry_states, size - 1, tier] += count
    return cases


@given(weights_st, st.lists(day_st, min_size=1, max_size=15), st.integers(0, 2**31))
def test_within_m_of_fair_share_at_every_step(
    weights: list[int], days: list[list[tuple[int, int, int]]], seed: int
) -> None:
    w = np.array(weights, dtype=np.int64)
    codes = [f"S{i}" for i in range(w.size)]
    ledger = KeyLedger(w, int(w.sum()), lottery_rank(codes, seed))
    for day in days:
        cases = _cases(day, 2)
        placed, received = allocate_by_key(ledger, cases, None)
        # everyone placed (no capacity limit), whole families: persons add up per cohort
        assert (placed == cases).all()
        sizes = np.arange(1, 10)
        assert int(received.sum()) == int(np.einsum("ekt,k->", cases, sizes))
        assert ledger.within_m(), (ledger.deviation(), ledger.largest)


@given(weights_st, st.lists(day_st, min_size=1, max_size=10), st.data())
def test_capacity_is_never_exceeded_and_families_stay_whole(
    weights: list[int], days: list[list[tuple[int, int, int]]], data: st.DataObject
) -> None:
    w = np.array(weights, dtype=np.int64)
    ledger = KeyLedger(w, int(w.sum()), np.arange(w.size, dtype=np.int64))
    for day in days:
        cases = _cases(day, 3)
        room = np.array(data.draw(st.lists(st.integers(0, 40), min_size=w.size, max_size=w.size)))
        start = room.copy()
        placed, received = allocate_by_key(ledger, cases, room)
        assert (received <= start).all()
        assert (room >= 0).all()
        assert ((placed >= 0) & (placed <= cases)).all()
        assert int(received.sum()) == int(np.einsum("ekt,k->", placed, np.arange(1, 10)))


@given(
    st.lists(st.integers(-60, 60), min_size=1, max_size=6),
    st.integers(1, 9),
    st.integers(0, 40),
    st.data(),
)
def test_waterfill_is_the_greedy_one_family_at_a_time(
    gaps: list[int], unit: int, count: int, data: st.DataObject
) -> None:
    n = len(gaps)
    limit = np.array(data.draw(st.lists(st.integers(0, 15), min_size=n, max_size=n)))
    rank = np.array(data.draw(st.permutations(list(range(n)))))
    gap = np.array(gaps, dtype=np.int64)
    expected = np.zeros(n, dtype=np.int64)
    g = gap.copy()
    for _ in range(count):
        open_ = [d for d in range(n) if expected[d] < limit[d]]
        if not open_:
            break
        d = max(open_, key=lambda d: (g[d], -rank[d]))
        expected[d] += 1
        g[d] -= unit
    assert (waterfill(gap, unit, count, limit, rank) == expected).all()
