"""The simulator's vectorised allocation agrees with the allocation engine on small batches:
the same persons per tier, and both within the same fairness bound (M)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fairshare.cases import SERVICES
from fairshare.engine import ColumnarProblem, ColumnarResult, solve_columns
from fairshare.simulation.cohorts import KeyLedger, lottery_rank
from fairshare.simulation.policies import allocate_by_key

FAMILY = st.sampled_from([1, 1, 1, 1, 2, 2, 3, 4, 5, 6, 9])


def _engine(
    sizes: list[int], tiers: list[int], weights: list[int], before: list[int], capacity: list[int]
) -> ColumnarResult:
    states = tuple(f"S{i}" for i in range(len(weights)))
    n, d, total = len(sizes), len(states), sum(weights)
    problem = ColumnarProblem(
        dest_ids=states,
        dest_state=states,
        capacity=np.array(capacity, dtype=np.int64),
        services=np.zeros((d, len(SERVICES)), dtype=np.int64),
        participating=np.ones(d, dtype=bool),
        before=np.array(before, dtype=np.int64),
        shares={s: Fraction(w, total) for s, w in zip(states, weights, strict=True)},
        size=np.array(sizes, dtype=np.int64),
        tier=np.array(tiers, dtype=np.int64),
        needs=np.zeros((n, len(SERVICES)), dtype=np.int64),
        registered=np.zeros(n, dtype=np.int64),
        draw=np.arange(n, dtype=np.int64),
        group=np.arange(n, dtype=np.int64),
        largest_unit=max(sizes, default=0),
    )
    return solve_columns(problem, seed=0)


def _ours(
    sizes: list[int], tiers: list[int], weights: list[int], before: list[int], capacity: list[int]
) -> tuple[np.ndarray, np.ndarray, KeyLedger]:
    w = np.array(weights, dtype=np.int64)
    ledger = KeyLedger(w, int(w.sum()), lottery_rank([f"S{i}" for i in range(w.size)], 0))
    ledger.received = np.array(before, dtype=np.int64)
    ledger.total = sum(before)
    ledger.largest = max(sizes, default=0)
    cases = np.zeros((1, 9, 3), dtype=np.int64)
    for s, t in zip(sizes, tiers, strict=True):
        cases[0, s - 1, t - 1] += 1
    placed, received = allocate_by_key(ledger, cases, np.array(capacity, dtype=np.int64))
    return placed, received, ledger


@settings(max_examples=60)
@given(
    st.lists(st.integers(1, 30), min_size=2, max_size=5),
    st.lists(st.tuples(FAMILY, st.integers(1, 3)), min_size=1, max_size=30),
)
def test_ample_capacity_same_persons_both_within_m(
    weights: list[int], batch: list[tuple[int, int]]
) -> None:
    sizes, tiers = [s for s, _ in batch], [t for _, t in batch]
    d = len(weights)
    capacity, before = [10_000] * d, [0] * d
    engine = _engine(sizes, tiers, weights, before, capacity)
    _placed, received, ledger = _ours(sizes, tiers, weights, before, capacity)
    assert int(received.sum()) == engine.tiers[2].placed == sum(sizes)
    m = max(sizes)
    assert float(np.abs(ledger.deviation()).max()) <= m
    assert engine.max_abs_deviation[0] <= m + 1e-9


@settings(max_examples=60)
@given(
    st.lists(st.integers(1, 30), min_size=2, max_size=5),
    st.lists(st.integers(1, 3), min_size=1, max_size=50),
    st.data(),
)
def test_scarce_places_same_persons_per_tier(
    weights: list[int], tiers: list[int], data: st.DataObject
) -> None:
    d = len(weights)
    capacity = data.draw(st.lists(st.integers(0, 12), min_size=d, max_size=d))
    before = data.draw(st.lists(st.integers(0, 5), min_size=d, max_size=d))
    sizes = [1] * len(tiers)
    engine = _engine(sizes, tiers, weights, before, capacity)
    placed, received, _ledger = _ours(sizes, tiers, weights, before, capacity)
    ours = [int(placed[0, 0, 0]), int(placed[0, 0, 1]), int(placed[0, 0].sum())]
    assert ours == [level.placed for level in engine.tiers]
    assert (received <= np.array(capacity)).all()
