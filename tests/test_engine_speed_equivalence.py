"""The engine's vectorised internals give exactly what the plain-Python versions gave.

``fairshare.engine`` keeps the units' wishes as sparse arrays (``_Wishes``) and matches units
to slots with numpy; these tests hold them to the dictionary-based reference versions they
replaced (kept here, unchanged in meaning): the same entries in the same order, bit-for-bit
the same sums, the same wish signatures and the same matching. The quick fix-up (only the
types the LP held fractionally) is held to the exact optimum like the default path.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any
from unittest.mock import patch

import highspy
import numpy as np
import pytest

from exact_mip import assignment_of, check_assignment, levels_of
from fairshare import engine
from fairshare.cases import SERVICES
from test_quality import INSTANCES, _exact, _instance

Dicts = dict[int, dict[int, float]]

# --------------------------------------------------------------------------------------------
# Reference versions (dictionaries, loops)


def ref_wishes(rows: np.ndarray, values: np.ndarray, unit: np.ndarray, column: np.ndarray) -> Dicts:
    per_case: dict[tuple[int, int], float] = {}
    for c, col, v in zip(rows[:, 0].tolist(), column.tolist(), values.tolist(), strict=True):
        key = (c, col)
        per_case[key] = max(per_case.get(key, v), v)
    out: Dicts = {}
    for (c, col), v in per_case.items():
        bucket = out.setdefault(int(unit[c]), {})
        bucket[col] = bucket.get(col, 0.0) + v
    return out


def ref_local_wishes(
    rows: np.ndarray,
    values: np.ndarray,
    unit: np.ndarray,
    members: np.ndarray,
    local: dict[int, int],
) -> Dicts:
    position = {int(u): k for k, u in enumerate(members.tolist())}
    out: Dicts = {}
    for c, d, v in zip(rows[:, 0].tolist(), rows[:, 1].tolist(), values.tolist(), strict=True):
        k = position.get(int(unit[c]))
        if k is None:
            continue
        bucket = out.setdefault(k, {})
        bucket[local[d]] = bucket.get(local[d], 0.0) + v
    return out


def ref_signatures(pref: Dicts, score: Dicts, n_units: int) -> tuple[np.ndarray, int]:
    wish = np.zeros(n_units, dtype=np.int64)
    signatures: dict[tuple[Any, ...], int] = {}
    for u in sorted(set(pref) | set(score)):
        sig = (tuple(sorted(pref.get(u, {}).items())), tuple(sorted(score.get(u, {}).items())))
        wish[u] = signatures.setdefault(sig, len(signatures) + 1)
    return wish, len(signatures)


def ref_match(
    units: np.ndarray,
    dests: np.ndarray,
    counts: np.ndarray,
    pref_of: Dicts,
    score_of: Dicts,
    order: np.ndarray,
) -> np.ndarray:
    slots = np.repeat(dests, counts)
    wants = [u for u in units.tolist() if u in pref_of or u in score_of]
    if not wants or dests.size == 1:
        return slots
    n_u, n_d = len(wants), dests.size
    pref = np.zeros((n_u, n_d))
    score = np.zeros((n_u, n_d))
    col = {int(d): k for k, d in enumerate(dests.tolist())}
    for i, u in enumerate(wants):
        for d, v in pref_of.get(u, {}).items():
            if d in col:
                pref[i, col[d]] = v
        for d, v in score_of.get(u, {}).items():
            if d in col:
                score[i, col[d]] = v
    spread = float(np.abs(score).sum()) * 2.0 + 1.0
    utility = pref * spread + score
    favourite = utility.argmax(axis=1)
    demand = np.bincount(favourite, minlength=n_d)
    if (demand <= counts).all():
        remaining = counts - demand
        chosen_fast = {u: int(dests[favourite[i]]) for i, u in enumerate(wants)}
        rest_fast = iter(np.repeat(dests, remaining).tolist())
        return np.array(
            [chosen_fast[u] if u in chosen_fast else next(rest_fast) for u in units.tolist()]
        )
    if n_u * n_d > engine.MATCHING_LP_LIMIT:
        remaining = counts.copy()
        tie = order[dests].astype(np.float64)
        chosen_serial: dict[int, int] = {}
        for i, u in enumerate(wants):
            value = np.where(remaining > 0, utility[i] - tie * 1e-9, -np.inf)
            k = int(np.argmax(value))
            chosen_serial[u] = int(dests[k])
            remaining[k] -= 1
        rest_serial = iter(np.repeat(dests, remaining).tolist())
        return np.array(
            [chosen_serial[u] if u in chosen_serial else next(rest_serial) for u in units.tolist()]
        )
    h = engine._highs()
    n_cols = n_u * n_d
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = n_u + n_d
    lp.col_cost_ = utility.reshape(-1)
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = np.ones(n_cols)
    lp.row_lower_ = np.concatenate([np.ones(n_u), np.zeros(n_d)])
    lp.row_upper_ = np.concatenate([np.ones(n_u), counts.astype(np.float64)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(0, 2 * n_cols + 1, 2, dtype=np.int32)
    unit_row = np.repeat(np.arange(n_u), n_d)
    dest_row = n_u + np.tile(np.arange(n_d), n_u)
    lp.a_matrix_.index_ = np.stack([unit_row, dest_row], axis=1).reshape(-1).astype(np.int32)
    lp.a_matrix_.value_ = np.ones(2 * n_cols)
    lp.sense_ = highspy.ObjSense.kMaximize
    h.passModel(lp)
    engine._run(h, "the preference matching")
    x = np.asarray(h.getSolution().col_value).reshape(n_u, n_d)
    pick = x.argmax(axis=1)
    remaining = counts.copy()
    chosen: dict[int, int] = {}
    for i, u in enumerate(wants):
        k = int(pick[i])
        if x[i, k] < 0.5 or remaining[k] <= 0:
            k = int(np.flatnonzero(remaining > 0)[0])
        chosen[u] = int(dests[k])
        remaining[k] -= 1
    rest = iter(np.repeat(dests, remaining).tolist())
    return np.array([chosen[u] if u in chosen else next(rest) for u in units.tolist()])


# --------------------------------------------------------------------------------------------
# Helpers


def as_dicts(w: engine._Wishes) -> Dicts:
    """The entries as unit -> destination -> value, in the entries' order."""
    out: Dicts = {}
    for u, d, v in zip(w.unit.tolist(), w.dest.tolist(), w.value.tolist(), strict=True):
        assert d not in out.get(u, {})
        out.setdefault(u, {})[d] = v
    for u in range(w.count.size):
        rows = slice(int(w.start[u]), int(w.start[u] + w.count[u]))
        assert (w.unit[rows] == u).all()
        assert int(w.count[u]) == len(out.get(u, {}))
    return out


def same(a: Dicts, b: Dicts) -> None:
    """Equal, in the same order, bit for bit."""
    assert list(a) == list(b)
    for u in a:
        assert list(a[u]) == list(b[u])
        assert [v.hex() for v in a[u].values()] == [v.hex() for v in b[u].values()]


def random_rows(
    rng: np.random.Generator, n_cases: int, n_cols: int, n_rows: int, coarse: bool
) -> tuple[np.ndarray, np.ndarray]:
    rows = np.stack(
        [rng.integers(0, n_cases, n_rows), rng.integers(0, n_cols, n_rows)], axis=1
    ).astype(np.int64)
    values = rng.integers(0, 4, n_rows) * 0.1 if coarse else rng.random(n_rows) * 10 - 2
    return rows, values.astype(np.float64)


def level_with(pref: engine._Wishes, score: engine._Wishes, order: np.ndarray) -> engine._Level:
    n_dest, s = order.size, len(SERVICES)
    zero = np.zeros(0, dtype=np.int64)
    return engine._Level(
        persons=np.zeros((0, 3), dtype=np.int64),
        needs=np.zeros((0, s), dtype=np.int64),
        allowed=np.zeros((0, n_dest), dtype=bool),
        registered=zero,
        draw=zero,
        capacity=np.zeros(n_dest, dtype=np.int64),
        services=np.zeros((n_dest, s), dtype=np.int64),
        largest_place=np.zeros(n_dest, dtype=np.int64),
        before=np.zeros(n_dest, dtype=np.int64),
        shares=[Fraction(1, n_dest)] * n_dest,
        order=order,
        pref=pref,
        score=score,
    )


# --------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("seed", range(40))
def test_wishes_match_the_dictionary_version(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_cases = int(rng.integers(1, 300))
    n_units = int(rng.integers(1, n_cases + 1))
    unit = rng.integers(0, n_units, n_cases).astype(np.int64)
    n_cols = int(rng.integers(1, 12))
    rows, values = random_rows(rng, n_cases, n_cols, int(rng.integers(0, 600)), seed % 2 == 0)
    column = np.asarray(rng.integers(0, n_cols, rows.shape[0]), dtype=np.int64)  # e.g. a state
    got = engine._wishes(rows, values, unit, column, n_units)
    same(as_dicts(got), ref_wishes(rows, values, unit, column))


@pytest.mark.parametrize("seed", range(20))
def test_local_wishes_match_the_dictionary_version(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_cases, n_dest = int(rng.integers(1, 200)), int(rng.integers(2, 10))
    n_units = int(rng.integers(1, n_cases + 1))
    unit = rng.integers(0, n_units, n_cases).astype(np.int64)
    members = np.sort(rng.choice(n_units, int(rng.integers(1, n_units + 1)), replace=False))
    dests = np.sort(rng.choice(n_dest, int(rng.integers(1, n_dest + 1)), replace=False))
    rows, values = random_rows(rng, n_cases, n_dest, int(rng.integers(0, 400)), seed % 2 == 0)
    keep = np.isin(rows[:, 1], dests)
    rows, values = rows[keep], values[keep]
    local = np.full(n_dest, -1, dtype=np.int64)
    local[dests] = np.arange(dests.size)
    got = engine._local_wishes((rows, values), unit, members, local)
    ref = ref_local_wishes(rows, values, unit, members, {int(d): k for k, d in enumerate(dests)})
    same(as_dicts(got), ref)


@pytest.mark.parametrize("seed", range(40))
def test_signatures_and_type_tables_match(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_cases = int(rng.integers(1, 300))
    n_units = int(rng.integers(1, n_cases + 1))
    unit = rng.integers(0, n_units, n_cases).astype(np.int64)
    n_cols = int(rng.integers(1, 5))
    pref_rows, pref_values = random_rows(rng, n_cases, n_cols, int(rng.integers(0, 200)), True)
    pref_values = np.floor(pref_values * 10.0) + 1.0  # ranks as values
    score_rows, score_values = random_rows(
        rng, n_cases, n_cols, int(rng.integers(0, 200)), seed % 3 != 0
    )
    if seed % 5 == 0:
        score_values[::3] = -0.0  # equal to 0.0, as in a comparison of floats
    pref = engine._wishes(pref_rows, pref_values, unit, pref_rows[:, 1], n_units)
    score = engine._wishes(score_rows, score_values, unit, score_rows[:, 1], n_units)
    got = np.zeros(n_units, dtype=np.int64)
    n_sig = engine._signatures(pref, score, got, n_units + 1)
    want, n_want = ref_signatures(as_dicts(pref), as_dicts(score), n_units)
    assert n_sig == n_want
    assert (got == want).all()
    for limit in (1, 3, 10):  # stopping early: the count is right up to the limit
        n_cut = engine._signatures(pref, score, np.zeros(n_units, dtype=np.int64), limit)
        assert n_cut == n_want if n_want <= limit else n_cut > limit
    # The per-type sums of _solve_level: entry by entry, in the dictionaries' order.
    type_of = rng.integers(-1, 4, n_units)
    for w in (pref, score):
        table = np.zeros((4, n_cols))
        for u, row in as_dicts(w).items():
            if type_of[u] >= 0:
                for d, v in row.items():
                    table[type_of[u], d] += v
        fast = np.zeros((4, n_cols))
        ok = type_of[w.unit] >= 0
        np.add.at(fast, (type_of[w.unit][ok], w.dest[ok]), w.value[ok])
        assert fast.tobytes() == table.tobytes()


@pytest.mark.parametrize("seed", range(60))
def test_matching_matches_the_loop_version(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_dest = int(rng.integers(2, 9))
    # Small types (exact LP), large ones (serial dictatorship), and some in between.
    n = int(rng.integers(1, 60)) if seed % 3 == 0 else int(rng.integers(200, 3000))
    n_units = n + int(rng.integers(0, 50))
    units = np.sort(rng.choice(n_units, n, replace=False)).astype(np.int64)
    dests = np.sort(rng.choice(n_dest, int(rng.integers(1, n_dest + 1)), replace=False))
    counts = np.bincount(rng.integers(0, dests.size, n), minlength=dests.size).astype(np.int64)
    n_rows = int(rng.integers(0, 3 * n))
    pref_rows = np.stack(
        [rng.integers(0, n_units, n_rows), rng.integers(0, n_dest, n_rows)], axis=1
    ).astype(np.int64)
    pref_values = rng.integers(1, 4, n_rows).astype(np.float64)
    score_rows, score_values = random_rows(rng, n_units, n_dest, n_rows // 2, seed % 2 == 0)
    identity = np.arange(n_units, dtype=np.int64)
    pref = engine._wishes(pref_rows, pref_values, identity, pref_rows[:, 1], n_units)
    score = engine._wishes(score_rows, score_values, identity, score_rows[:, 1], n_units)
    order = rng.permutation(n_dest).astype(np.int64)
    stats: dict[str, int | str] = {}
    got = engine._match(units, dests, counts, level_with(pref, score, order), stats)
    want = ref_match(units, dests, counts, as_dicts(pref), as_dicts(score), order)
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("i", INSTANCES)
def test_quick_fix_up_meets_the_exact_optimum(i: int) -> None:
    """With the quick fix-up tried first at any size, the engine still meets the exact
    lexicographic optimum as tests/test_quality.py demands of the default path."""
    from fairshare.allocate import allocate_document

    data, exact = _exact(i)
    with patch.object(engine, "FIX_UP_QUICK_ABOVE", 0):
        output = allocate_document(_instance(i), seed=0)
    assignment = assignment_of(output)
    assert check_assignment(data, assignment) == []
    got = levels_of(data, assignment)
    opt = exact.levels
    assert got.tier1 == opt.tier1
    assert got.tier2 >= 0.995 * opt.tier2
    assert got.total >= 0.995 * opt.total
    assert output["objective"]["tier1"]["bound"] >= opt.tier1 - 1e-6


@pytest.mark.parametrize("seed", range(20))
def test_wishes_of_rows_case_by_case_take_the_shortcut_with_the_same_result(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    n_cases = int(rng.integers(2, 200))
    n_units = int(rng.integers(1, n_cases + 1))
    unit = rng.integers(0, n_units, n_cases).astype(np.int64)
    n_cols = int(rng.integers(1, 12))
    # Each case names some columns once, in its own order (as scores and preferences do).
    named = [rng.permutation(n_cols)[: rng.integers(0, n_cols + 1)] for _ in range(n_cases)]
    cases = np.repeat(np.arange(n_cases), [c.size for c in named]).astype(np.int64)
    column = np.concatenate(named).astype(np.int64)
    rows = np.stack([cases, column], axis=1)
    values = rng.choice([0.0, -0.0, 0.5, 1.25, -3.0], size=cases.size)
    assert engine._sorted_and_distinct(cases, column, n_cols)
    fast = engine._wishes(rows, values, unit, column, n_units)
    monkeypatch.setattr(engine, "_sorted_and_distinct", lambda *args: False)
    slow = engine._wishes(rows, values, unit, column, n_units)
    for name in ("unit", "dest", "value", "start", "count"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype
        assert a.tobytes() == b.tobytes(), name  # bit for bit (-0.0 included)


def summed_with_np_unique(owner: np.ndarray, dest: np.ndarray, value: np.ndarray, n: int) -> Any:
    """The first version of ``_Wishes.summed`` (np.unique, ufunc.at, lexsort)."""
    width = int(dest.max()) + 1
    key, first, inverse = np.unique(owner * width + dest, return_index=True, return_inverse=True)
    total = np.bincount(inverse.reshape(-1), weights=value, minlength=key.size)
    unit = key // width
    unit_first = np.full(n, owner.size, dtype=np.int64)
    np.minimum.at(unit_first, owner, np.arange(owner.size, dtype=np.int64))
    order = np.lexsort((first, unit_first[unit]))
    unit = unit[order]
    count = np.bincount(unit, minlength=n).astype(np.int64)
    start = np.zeros(n, dtype=np.int64)
    new = np.ones(unit.size, dtype=bool)
    new[1:] = unit[1:] != unit[:-1]
    start[unit[new]] = np.flatnonzero(new)
    return engine._Wishes(unit, (key % width)[order], total[order], start, count)


@pytest.mark.parametrize("seed", range(30))
def test_summed_by_one_stable_sort_is_summed_by_np_unique(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_units = int(rng.integers(1, 60))
    size = int(rng.integers(1, 400))
    if seed % 3 == 0:  # nearly sorted, as real wishes come
        owner = np.sort(rng.integers(0, n_units, size))
        owner[rng.integers(0, size, 3)] = rng.integers(0, n_units, 3)
    else:
        owner = rng.integers(0, n_units, size)
    dest = rng.integers(0, int(rng.integers(1, 30)), size)
    value = rng.choice([0.0, -0.0, 0.1, 0.7, -2.5, 1e-17], size=size)
    keys = owner * 64 + dest
    mine = engine._unique_first(keys)
    theirs = np.unique(keys, return_index=True, return_inverse=True)
    for a, b in zip(mine, theirs, strict=True):
        assert np.array_equal(a, np.asarray(b).reshape(-1))
    got = engine._Wishes.summed(owner, dest, value, n_units)
    ref = summed_with_np_unique(owner, dest, value, n_units)
    for name in ("unit", "dest", "value", "start", "count"):
        assert getattr(got, name).tobytes() == getattr(ref, name).tobytes(), name
