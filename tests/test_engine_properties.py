"""Property tests of the allocation engine's invariants (Hypothesis).

Every hard constraint, the tier order ("a vulnerable person never waits while a less
vulnerable one takes a place she could have had") and the fairness bound over sequences of
batches with realistic family sizes are checked on random problems given as columns.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fairshare.cases import SERVICES
from fairshare.engine import (
    BINDING_UNAVAILABLE,
    NO_BINDING,
    WAIT_LINK,
    ColumnarProblem,
    ColumnarResult,
    solve_columns,
)

STATES = ("DE", "FR", "IT", "ES", "PL", "SE")
S = len(SERVICES)

#: Family sizes for the tests: mostly single adults and small families, some large ones.
#: This mix is a test assumption, not a statistic.
FAMILY_SIZES = (1, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 9)


@st.composite
def problems(draw: st.DrawFn, *, ample: bool = False, constraints: bool = True) -> ColumnarProblem:
    n_dest = draw(st.integers(2, len(STATES)))
    states = STATES[:n_dest]
    n = draw(st.integers(1, 40))
    size = np.array([draw(st.sampled_from(FAMILY_SIZES)) for _ in range(n)], dtype=np.int64)
    tier = np.array([draw(st.sampled_from((1, 2, 2, 3, 3, 3, 3))) for _ in range(n)])
    needs = np.zeros((n, S), dtype=np.int64)
    if constraints:
        for i in range(n):
            if tier[i] < 3 and draw(st.booleans()):
                needs[i, draw(st.integers(0, S - 1))] = draw(st.integers(1, int(size[i])))
    total = int(size.sum())
    if ample:
        capacity = np.full(n_dest, total * 2 + 10, dtype=np.int64)
        services = np.full((n_dest, S), total * 2 + 10, dtype=np.int64)
    else:
        capacity = np.array(
            [draw(st.integers(0, max(1, total // n_dest + 6))) for _ in states], dtype=np.int64
        )
        services = np.array(
            [[draw(st.integers(0, int(c))) for _ in SERVICES] for c in capacity], dtype=np.int64
        ).reshape(n_dest, S)
    participating = np.array(
        [True] + [draw(st.booleans()) or ample for _ in states[1:]], dtype=bool
    )
    weights = [draw(st.integers(1, 50)) for _ in states]
    shares = {s: Fraction(w, sum(weights)) for s, w in zip(states, weights, strict=True)}
    group = np.arange(n, dtype=np.int64)
    binding = np.full(n, NO_BINDING, dtype=np.int64)
    excluded: list[tuple[int, int]] = []
    if constraints:
        for _ in range(draw(st.integers(0, n // 3))):
            a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
            group[group == group[b]] = group[a]
        for i in range(n):
            roll = draw(st.integers(0, 9))
            if roll == 0:
                binding[i] = draw(st.integers(0, n_dest - 1))
            elif roll == 1:
                binding[i] = BINDING_UNAVAILABLE
            elif roll == 2:
                excluded.append((i, draw(st.integers(0, n_dest - 1))))
    return ColumnarProblem(
        dest_ids=states,
        dest_state=states,
        capacity=capacity,
        services=services,
        participating=participating,
        before=np.zeros(n_dest, dtype=np.int64),
        shares=shares,
        size=size,
        tier=tier.astype(np.int64),
        needs=needs,
        registered=np.array([draw(st.integers(0, 5)) for _ in range(n)], dtype=np.int64),
        draw=np.arange(n, dtype=np.int64)[::-1].copy(),
        group=group,
        binding_states=states,
        binding=binding,
        excluded=np.array(excluded, dtype=np.int64).reshape(-1, 2),
    )


def allowed_matrix(p: ColumnarProblem, result: ColumnarResult) -> np.ndarray:
    """Where each unit may go under the hard constraints (units = linked groups)."""
    n_units = int(result.unit.max()) + 1
    allowed = np.broadcast_to(p.participating, (n_units, len(p.dest_ids))).copy()
    for c, d in p.excluded.tolist():
        allowed[result.unit[c], d] = False
    for c, b in enumerate(p.binding.tolist()):
        u = result.unit[c]
        if b == BINDING_UNAVAILABLE:
            allowed[u] = False
        elif b >= 0:
            allowed[u] &= np.array([s == p.binding_states[b] for s in p.dest_state])
    return allowed


def check_hard_constraints(p: ColumnarProblem, r: ColumnarResult) -> None:
    dest = r.destination
    # Whole linked groups go together (or wait together).
    for u in np.unique(r.unit):
        assert len(set(dest[r.unit == u].tolist())) == 1
    placed = dest >= 0
    persons = np.bincount(dest[placed], weights=p.size[placed], minlength=len(p.dest_ids))
    assert (persons <= p.capacity).all()
    assert (persons == r.placed).all()
    used = np.zeros_like(p.services)
    np.add.at(used, dest[placed], p.needs[placed])
    assert (used <= p.services).all()
    allowed = allowed_matrix(p, r)
    for c in np.flatnonzero(placed):
        assert allowed[r.unit[c], dest[c]], f"case {c} went where it may not"
        assert p.participating[dest[c]]
    for c in np.flatnonzero(p.binding == BINDING_UNAVAILABLE):
        assert dest[c] == -1
        assert r.wait[c] == WAIT_LINK


def check_tier_order(p: ColumnarProblem, r: ColumnarResult) -> None:
    """No waiting unit could take the places of units of a lower tier at an allowed place."""
    n_units = int(r.unit.max()) + 1
    dest_u = np.full(n_units, -1)
    dest_u[r.unit] = r.destination
    pers = np.zeros((n_units, 3), dtype=np.int64)
    needs = np.zeros((n_units, S), dtype=np.int64)
    for c in range(p.size.size):
        pers[r.unit[c], p.tier[c] - 1] += p.size[c]
        needs[r.unit[c]] += p.needs[c]
    size = pers.sum(axis=1)
    free = p.capacity - r.placed
    used = np.zeros_like(p.services)
    for u in range(n_units):
        if dest_u[u] >= 0:
            used[dest_u[u]] += needs[u]
    free_svc = p.services - used
    allowed = allowed_matrix(p, r)
    for u in np.flatnonzero(dest_u < 0):
        if pers[u, 0] > 0:
            lower = (pers[:, 0] == 0) & (dest_u >= 0)
        elif pers[u, 1] > 0:
            lower = (pers[:, 0] == 0) & (pers[:, 1] == 0) & (dest_u >= 0)
        else:
            continue
        for d in np.flatnonzero(allowed[u]):
            here = lower & (dest_u == d)
            room = free[d] + size[here].sum()
            svc_room = free_svc[d] + needs[here].sum(axis=0)
            fits = room >= size[u] and (svc_room >= needs[u]).all()
            assert not fits, (
                f"unit {u} (tier persons {pers[u].tolist()}) waits although it could take "
                f"the places of lower-tier units at destination {d}"
            )


@given(problems())
def test_hard_constraints_and_tier_order(p: ColumnarProblem) -> None:
    r = solve_columns(p, seed=3)
    check_hard_constraints(p, r)
    check_tier_order(p, r)
    for level in r.tiers:
        assert level.bound >= level.placed
    assert 0.0 <= r.gap <= 1.0


@given(problems(), st.integers(0, 2**31))
def test_same_seed_same_result(p: ColumnarProblem, seed: int) -> None:
    a = solve_columns(p, seed=seed)
    b = solve_columns(p, seed=seed)
    assert (a.destination == b.destination).all()
    assert (a.tie_draw == b.tie_draw).all()
    assert (a.wait == b.wait).all()


@given(st.data())
def test_fairness_within_m_over_sequences_of_batches(data: st.DataObject) -> None:
    """With room for everyone and no links or exclusions, every state ends every batch
    within M (the largest case allocated so far) of its fair share."""
    n_dest = data.draw(st.integers(2, len(STATES)))
    states = STATES[:n_dest]
    weights = [data.draw(st.integers(1, 60)) for _ in states]
    shares = {s: Fraction(w, sum(weights)) for s, w in zip(states, weights, strict=True)}
    received = np.zeros(n_dest, dtype=np.int64)
    largest = 0
    for _ in range(data.draw(st.integers(1, 5))):
        n = data.draw(st.integers(1, 30))
        size = np.array(
            [data.draw(st.sampled_from(FAMILY_SIZES)) for _ in range(n)], dtype=np.int64
        )
        p = ColumnarProblem(
            dest_ids=states,
            dest_state=states,
            capacity=np.full(n_dest, 10**6, dtype=np.int64),
            services=np.zeros((n_dest, S), dtype=np.int64),
            participating=np.ones(n_dest, dtype=bool),
            before=received.copy(),
            shares=shares,
            size=size,
            tier=np.array([data.draw(st.sampled_from((1, 2, 3))) for _ in range(n)]),
            needs=np.zeros((n, S), dtype=np.int64),
            registered=np.zeros(n, dtype=np.int64),
            draw=np.arange(n, dtype=np.int64),
            group=np.arange(n, dtype=np.int64),
            largest_unit=largest,
        )
        r = solve_columns(p, seed=0)
        assert (r.destination >= 0).all()
        received = received + r.placed
        largest = max(largest, int(size.max()))
        total = int(received.sum())
        for i, s in enumerate(states):
            deviation = received[i] - shares[s] * total
            assert abs(deviation) <= largest, (s, float(deviation), largest)
