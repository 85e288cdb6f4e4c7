"""The allocation engine's columnar core: whole families, lexicographic objectives, exact bounds.

This module is pure (no I/O) and works on numpy columns, so that a million cases fit in memory
and in a minute. :mod:`fairshare.allocate` turns validated cases into these columns and the
result back into explained decisions; columnar users (the simulator, the benchmarks) call
:func:`solve_columns` directly.

The model (docs/allocation.md):

* a **unit** is a linked group of cases (Regulation (EU) No 604/2013, Art. 11: family members
  applying together are kept together); a unit goes whole to one destination or waits;
* a destination has ``capacity`` places (persons) and ``services`` places per service; a person
  in a service place also takes one of the capacity places;
* the objectives are lexicographic: (1) tier-1 persons placed, then tier-2 persons, then all
  persons; (2) fairness against the key over the participating destinations: the largest
  absolute deviation from the fair share, then the sum of absolute deviations; (3) the cases'
  ranked preferences, then their outcome scores.

How it is solved (docs/decisions/0002-allocation-solver.md): units with the same size, tier
mix, service needs and set of allowed destinations (and, when there are few, the same wishes)
are interchangeable for objectives (1) and (2), so they are grouped into **types**. Each level
is a linear program over *types × destinations* (HiGHS simplex, each optimum held before the
next level), whose vertex solutions are almost integral. The type counts are rounded down;
the leftovers are re-solved in the places left (residual LPs), placed greedily most urgent
first where fairness wants them, and, if persons are still short of the LP, repaired by small
exact integer programs (HiGHS MIP, node-limited; on large batches first one over only the
types the LP held fractionally); if tier-1 persons are short, the tier-1 problem is solved
exactly and the rest around it. Unit-by-unit repairs keep the tier order, single-unit moves
the fairness bound. Inside a type, cases are placed in order of registration
(then the seeded draw) and matched to the type's destinations to best meet their preferences,
then their scores (a transportation problem, integral by total unimodularity). The LP optima
give upper bounds for the persons levels, so the reported gap is honest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, cast

import highspy
import numpy as np
import numpy.typing as npt

from fairshare.cases import SERVICES
from fairshare.errors import InfeasibleError, InputError
from fairshare.ledger import lottery_order

__all__ = [
    "BINDING_UNAVAILABLE",
    "NO_BINDING",
    "WAIT_CODES",
    "ColumnarProblem",
    "ColumnarResult",
    "Level",
    "solve_columns",
]

I64 = npt.NDArray[np.int64]
BoolArr = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]

#: ``binding`` value of a case without a binding family link.
NO_BINDING = -1
#: ``binding`` value of a case whose binding state is not a participating destination: it
#: waits for its family link (``waiting_link``).
BINDING_UNAVAILABLE = -2


@dataclass
class ColumnarProblem:
    """One allocation batch as columns.

    Destinations (``D``): ``dest_ids`` (a state code, or a region id), ``dest_state`` (the
    state of each destination: itself for a state), ``capacity`` (int64[D], free places),
    ``services`` (int64[D, S], free places per service, in the order of
    :data:`fairshare.cases.SERVICES`), ``participating`` (bool[D]), ``before`` (int64[D],
    persons received so far, for the fair share).

    ``shares``: the key's share per *state* (exact; only states of participating destinations
    count, and they are renormalised over them).

    Cases (``N``): ``size`` (int64[N], persons), ``tier`` (int64[N], 1–3; every member counts
    at the case's tier), ``needs`` (int64[N, S], service places needed), ``registered``
    (int64[N], e.g. days since 1970-01-01; earlier is placed first within a tier), ``draw``
    (int64[N], the seeded lottery number that breaks ties of ``registered``; lower first),
    ``group`` (int64[N], cases with the same group id go to the same destination; use the
    case's own index for a case without links), ``binding`` (int64[N]: index into
    ``binding_states`` of the state a family link binds the case to, :data:`NO_BINDING`, or
    :data:`BINDING_UNAVAILABLE`).

    Exclusions, preferences and scores are sparse: ``excluded`` (int64[K, 2] rows of case index,
    destination index: the case must not go there); ``preferences`` (int64[P, 3] rows of case
    index, destination index, rank from 0 = first choice); ``scores`` (rows ``score_at``
    int64[Q, 2] of case index, destination index with ``score_value`` float64[Q]).

    ``largest_unit``: M, the largest case the ledger has allocated before this batch.
    ``state_before``: persons a state has received that are not booked on any of its
    destinations (a ledger kept per state while the batch allocates to its regions).

    Exclusions and family links act on whole states: a case excluded from one destination of a
    state is kept out of all of them (never the other way round).
    """

    dest_ids: tuple[str, ...]
    dest_state: tuple[str, ...]
    capacity: I64
    services: I64
    participating: BoolArr
    before: I64
    shares: dict[str, Fraction]
    size: I64
    tier: I64
    needs: I64
    registered: I64
    draw: I64
    group: I64
    binding_states: tuple[str, ...] = ()
    binding: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    excluded: I64 = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    preferences: I64 = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    score_at: I64 = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    score_value: F64 = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    largest_unit: int = 0
    state_before: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Results

#: Why a case waits (``ColumnarResult.wait``): not waiting, no place, no service place, link.
PLACED, WAIT_CAPACITY, WAIT_SERVICE, WAIT_LINK = 0, 1, 2, 3
WAIT_CODES: tuple[str, ...] = ("", "waiting_capacity", "waiting_service", "waiting_link")


@dataclass
class Level:
    """One persons level of the objective: what was placed and the proven upper bound."""

    placed: int
    bound: float

    @property
    def gap(self) -> float:
        """Relative shortfall against the bound (0 when the bound is met)."""
        if self.bound <= 0:
            return 0.0
        return max(0.0, (self.bound - self.placed) / self.bound)


@dataclass
class ColumnarResult:
    """The decision for every case, and what the solver proved about it.

    ``destination``: int64[N], the destination index of each case, -1 when it waits;
    ``wait``: int64[N], :data:`PLACED` or a waiting reason (:data:`WAIT_CODES`);
    ``tie_draw``: bool[N], whether the seeded draw decided between this case and an equivalent
    one registered the same day; ``unit``: int64[N], the linked group of each case;
    ``placed``: int64[D] persons placed per destination; ``tiers``: the three persons
    levels; ``max_abs_deviation``/``sum_abs_deviation``: (value, LP value) of the fairness
    levels, ``fair_share``: exact fair share per destination (``None`` for a destination
    outside the key), ``stats``: counts of types, LP solves and fallbacks, for the record.
    """

    destination: I64
    wait: I64
    tie_draw: BoolArr
    unit: I64
    placed: I64
    tiers: tuple[Level, Level, Level]
    fair_share: list[Fraction | None]
    max_abs_deviation: tuple[float, float]
    sum_abs_deviation: tuple[float, float]
    stats: dict[str, int | str] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """The largest relative gap of the three persons levels (an honest upper bound)."""
        return max(level.gap for level in self.tiers)


# --------------------------------------------------------------------------------------------
# HiGHS, quietly

_HIGHS_STARTED = False
#: Relative tolerance when a level's optimum is fixed before the next level is solved.
_LEVEL_TOL = 1e-7
#: A type count within this of the next integer is rounded up (the later levels may use the
#: slack the tolerance leaves, e.g. 0.999996 of a unit at one place and 0.000004 at another);
#: a rounding that overfills a place is taken back.
_ROUND_EPS = 1e-4
#: The exact tier-1 integer program stops after this many branch-and-bound nodes (work, not
#: time, so results do not depend on the machine); its bound is reported if it stops early.
MIP_MAX_NODES = 20_000
#: A safety net only: should it ever be reached, the result could depend on the machine.
MIP_TIME_LIMIT = 120.0
#: Above this many (unit, destination) pairs, a type's cases are matched to its destinations
#: by registration order (serial dictatorship) instead of the exact matching LP.
MATCHING_LP_LIMIT = 5_000


def _highs() -> Any:
    """A silent HiGHS instance, single-threaded and seeded (so runs are reproducible).

    HiGHS prints a banner on standard output when the first instance of a process is created;
    standard output carries fairshare's JSON, so the banner is sent to /dev/null.
    """
    global _HIGHS_STARTED
    if not _HIGHS_STARTED:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()  # type: ignore[no-untyped-call]
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _HIGHS_STARTED = True
    else:
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("simplex_strategy", 4)  # primal: the levels change costs, keep the basis
    h.setOptionValue("presolve", "off")  # measured: 2-3x faster warm starts on the levels
    return h


#: Stops of an integer program that still leave its best solution (and a bound) usable.
_LIMITS = (
    highspy.HighsModelStatus.kSolutionLimit,  # HiGHS reports a node limit this way
    highspy.HighsModelStatus.kIterationLimit,
    highspy.HighsModelStatus.kTimeLimit,
)


def _run(h: Any, what: str) -> None:
    h.run()
    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal and not (
        status in _LIMITS and h.getInfo().primal_solution_status
    ):
        raise InfeasibleError(f"the solver could not solve {what}: {h.modelStatusToString(status)}")


# --------------------------------------------------------------------------------------------
# Units and types


@dataclass
class _Wishes:
    """What the units wish, sparse: one entry per (unit, destination) that has a value.

    ``unit``/``dest``/``value`` [K]: the entries, grouped by unit; the units, and each unit's
    destinations, come in the order in which the input rows first name them, and a value is
    the sum over the unit's cases in input order (so every sum over entries is taken in one
    fixed order, and the results do not depend on how the entries are looked up).
    ``start``/``count`` [U]: the entries of unit ``u`` are ``start[u] : start[u] + count[u]``.
    """

    unit: I64
    dest: I64
    value: F64
    start: I64
    count: I64

    @staticmethod
    def summed(owner: I64, dest: I64, value: F64, n_units: int) -> _Wishes:
        """Sum ``value`` per (owner, destination), in row order (owners are unit indices)."""
        if owner.size == 0:
            none = np.zeros(0, dtype=np.int64)
            return _Wishes(
                none, none, np.zeros(0), np.zeros(n_units, np.int64), np.zeros(n_units, np.int64)
            )
        width = int(dest.max()) + 1
        key, first, inverse = _unique_first(owner * width + dest)
        # Row by row from 0.0, exactly as a running sum in input order.
        total = np.bincount(inverse, weights=value, minlength=key.size)
        unit = key // width
        # Each unit's first row: the least first row of its keys (keys come unit by unit).
        unit_first = np.full(n_units, owner.size, dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
        unit_first[unit[starts]] = np.minimum.reduceat(first, starts)
        # Units by their first row, then each unit's keys by theirs (rows are distinct, so
        # one sort of the combined number; nearly sorted already, which a stable sort likes).
        order = np.argsort(unit_first[unit] * owner.size + first, kind="stable")
        unit = unit[order]
        count = np.bincount(unit, minlength=n_units).astype(np.int64)
        start = np.zeros(n_units, dtype=np.int64)
        new = np.ones(unit.size, dtype=bool)
        new[1:] = unit[1:] != unit[:-1]
        start[unit[new]] = np.flatnonzero(new)
        value_sum = total[order].astype(np.float64)
        return _Wishes(unit, (key % width)[order], value_sum, start, count)

    def table(self, units: I64, col_of: I64, n_cols: int) -> F64:
        """Values of ``units`` (rows) at the destinations ``col_of`` maps to columns (>= 0)."""
        out = np.zeros((units.size, n_cols))
        lens = self.count[units]
        total = int(lens.sum())
        if total == 0:
            return out
        row = np.repeat(np.arange(units.size), lens)
        offset = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
        idx = np.repeat(self.start[units], lens) + offset
        col = col_of[self.dest[idx]]
        ok = col >= 0
        out[row[ok], col[ok]] = self.value[idx[ok]]
        return out


@dataclass
class _Level:
    """One level (states, or the regions of one state) of the problem: units x destinations."""

    persons: I64  # [U, 3] persons per tier
    needs: I64  # [U, S]
    allowed: BoolArr  # [U, D]
    registered: I64  # [U]
    draw: I64  # [U]
    capacity: I64  # [D]
    services: I64  # [D, S]
    largest_place: I64  # [D] largest family one destination can take (regions: largest region)
    before: I64  # [D]
    shares: list[Fraction | None]  # [D] the key's share, None outside the key
    order: I64  # [D] tie order of destinations (lower first)
    pref: _Wishes  # preference values per unit and destination
    score: _Wishes  # scores per unit and destination
    group: I64 | None = None  # [D] the state of each destination, when regions are columns

    @property
    def size(self) -> I64:
        return cast(I64, self.persons.sum(axis=1))


@dataclass
class _Flat:
    """The decision of one level."""

    dest: I64  # [U] destination or -1
    tie: BoolArr  # [U]
    tiers: tuple[Level, Level, Level]
    max_dev: tuple[float, float]
    sum_dev: tuple[float, float]
    stats: dict[str, int | str]


#: Units with different preferences or scores form different types (so that the LP weighs
#: them against each other) up to this many distinct wishes; above it, the wishes are met by
#: matching each type's units to the type's places (docs/allocation.md), which keeps the LP
#: small (measured: 10,000 cases with distinct scores gave 4,232 types and 40 s of LP).
MAX_WISH_SIGNATURES = 64


def _types(level: _Level, live: BoolArr) -> tuple[I64, I64, bool]:
    """Group the live units into types.

    Returns the type of each unit (-1 if not live), a representative unit per type, and
    whether units with different wishes were kept in different types.
    """
    n_units, n_dest = level.allowed.shape
    words = (n_dest + 62) // 63
    packed = np.zeros((n_units, words), dtype=np.int64)
    for w in range(words):
        block = level.allowed[:, w * 63 : (w + 1) * 63].astype(np.int64)
        weights = np.left_shift(np.int64(1), np.arange(block.shape[1], dtype=np.int64))
        packed[:, w] = block @ weights
    wish = np.zeros((n_units, 1), dtype=np.int64)
    n_signatures = _signatures(level.pref, level.score, wish[:, 0], MAX_WISH_SIGNATURES)
    refined = 0 < n_signatures <= MAX_WISH_SIGNATURES
    if not refined:
        wish[:] = 0  # many distinct wishes: met by matching units to their type's places
    keys = np.concatenate([level.persons, level.needs, packed, wish], axis=1)
    type_of = np.full(n_units, -1, dtype=np.int64)
    idx = np.flatnonzero(live)
    if idx.size == 0:
        return type_of, np.zeros(0, dtype=np.int64), refined
    first, inverse = _unique_rows(keys[idx])
    type_of[idx] = inverse
    return type_of, idx[first], refined


#: An odd 64-bit constant that spreads small integers over the bits (a hash multiplier).
_MIX = np.int64(-7046029254386353131)


def _signatures(pref: _Wishes, score: _Wishes, out: I64, limit: int) -> int:
    """Number the units' distinct wishes (preferences and scores together) into ``out``.

    Units with equal preference values and equal scores at the same destinations get the
    same number, 1, 2, ... in the order of their lowest unit index; units without wishes 0.
    Each unit's entries (sorted by kind and destination) are tokens; a unit's signature is
    built token by token (a class of the prefix and the next token), then told apart by length.
    Returns the number of signatures, or, as soon as there are certainly more than ``limit``,
    a number above ``limit`` (``out`` is then incomplete).
    """
    unit = np.concatenate([pref.unit, score.unit])
    if unit.size == 0:
        return 0
    width = int(max(pref.dest.max(initial=0), score.dest.max(initial=0))) + 1
    place = np.concatenate([pref.dest, score.dest + width])  # kind and destination
    # + 0.0 makes -0.0 equal to 0.0 (as float comparison has it) before the bits are compared.
    bits = (np.concatenate([pref.value, score.value]) + 0.0).view(np.int64)
    # A unit has at most `longest` tokens, so there are at least (distinct tokens) / longest
    # signatures; mixing the two columns into one may only merge tokens, never split them.
    longest = int((pref.count + score.count).max())
    if np.unique(bits ^ (place * _MIX)).size > limit * longest:
        return limit + 1
    order = np.lexsort((place, unit))
    unit, place, bits = unit[order], place[order], bits[order]
    _, token = _unique_rows(np.stack([place, bits], axis=1))
    wishing, who, length = np.unique(unit, return_inverse=True, return_counts=True)
    who = who.reshape(-1)
    position = np.arange(unit.size) - np.searchsorted(unit, unit)
    signature = np.zeros(wishing.size, dtype=np.int64)
    for k in range(int(length.max())):
        at = np.flatnonzero(position == k)
        _, prefix = _unique_rows(np.stack([signature[who[at]], token[at]], axis=1))
        signature[who[at]] = prefix
        if int(prefix.max()) >= limit:
            return int(prefix.max()) + 1  # units with different prefixes differ
    first, cls = _unique_rows(np.stack([length, signature], axis=1))
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(1, first.size + 1)
    out[wishing] = rank[cls]
    return int(first.size)


def _unique_first(keys: I64) -> tuple[I64, I64, I64]:
    """``np.unique(keys, return_index=True, return_inverse=True)``: the distinct keys in
    order, the first index of each and every key's group, by one stable sort (fast on the
    nearly sorted keys of wishes, where ``np.unique`` takes 25 times longer)."""
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    new = np.empty(keys.size, dtype=bool)
    new[:1] = True
    new[1:] = ranked[1:] != ranked[:-1]
    inverse = np.empty(keys.size, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ranked[new], order[new], inverse


def _unique_rows(rows: I64) -> tuple[I64, I64]:
    """Distinct rows in lexicographic order: (first index of each, group of every row).

    The same answer as ``np.unique(rows, axis=0, return_index=True, return_inverse=True)``
    (up to which of equal rows is "first"), an order of magnitude faster on int64 rows.
    """
    order = np.lexsort(rows.T[::-1])
    ranked = rows[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (ranked[1:] != ranked[:-1]).any(axis=1)
    group = np.cumsum(new) - 1
    inverse = np.empty(order.size, dtype=np.int64)
    inverse[order] = group
    return order[new], inverse


# --------------------------------------------------------------------------------------------
# The type model: x[j] = how many units of type pt[j] go to destination pd[j]


@dataclass
class _Types:
    persons: I64  # [T, 3]
    size: I64  # [T]
    needs: I64  # [T, S]
    count: I64  # [T]
    pref: F64 | None = None  # [T, D] preference value of one unit of the type, if refined
    score: F64 | None = None  # [T, D] score of one unit of the type, if refined


class _Model:
    """A HiGHS model of the type problem over the pairs ``(pt, pd)``, with level rows."""

    def __init__(
        self,
        types: _Types,
        pt: I64,
        pd: I64,
        count: I64,
        capacity: I64,
        services: I64,
        *,
        integer: bool = False,
        sign: F64 | None = None,
        col_upper: F64 | None = None,
    ) -> None:
        """``sign`` -1 marks a column that takes units away (freeing their places);
        ``col_upper`` overrides the columns' upper bounds."""
        self.pt, self.pd = pt, pd
        self.types = types
        n_types = types.size.size
        n_dest, n_serv = services.shape
        n_cols = pt.size
        rows: list[I64] = [pt, n_types + pd]
        cols: list[I64] = [np.arange(n_cols, dtype=np.int64)] * 2
        vals: list[F64] = [np.ones(n_cols), types.size[pt].astype(np.float64)]
        upper: list[F64] = [count.astype(np.float64), capacity.astype(np.float64)]
        next_row = n_types + n_dest
        for s in range(n_serv):
            need = types.needs[pt, s]
            hit = need > 0
            if not hit.any():
                continue
            used = np.unique(pd[hit])
            row_of = np.full(n_dest, -1, dtype=np.int64)
            row_of[used] = next_row + np.arange(used.size)
            next_row += used.size
            rows.append(row_of[pd[hit]])
            cols.append(np.flatnonzero(hit))
            vals.append(need[hit].astype(np.float64))
            upper.append(services[used, s].astype(np.float64))
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        if sign is not None:
            v = v * sign[c]
        # Column-major; within a column the rows were generated in increasing order.
        order = np.argsort(c, kind="stable")
        r, c, v = r[order], c[order], v[order]
        start = np.searchsorted(c, np.arange(n_cols + 1)).astype(np.int32)
        lp = highspy.HighsLp()
        lp.num_col_ = n_cols
        lp.num_row_ = next_row
        lp.col_cost_ = np.zeros(n_cols)
        lp.col_lower_ = np.zeros(n_cols)
        upper_cols = np.minimum(count[pt], capacity[pd] // np.maximum(types.size[pt], 1))
        lp.col_upper_ = upper_cols.astype(np.float64) if col_upper is None else col_upper
        lp.row_lower_ = np.full(next_row, -highspy.kHighsInf)
        lp.row_upper_ = np.concatenate(upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = r.astype(np.int32)
        lp.a_matrix_.value_ = v
        lp.sense_ = highspy.ObjSense.kMaximize
        if integer:
            lp.integrality_ = [highspy.HighsVarType.kInteger] * n_cols
        self.h = _highs()
        if integer:
            self.h.setOptionValue("presolve", "on")
            self.h.setOptionValue("time_limit", MIP_TIME_LIMIT)
            self.h.setOptionValue("mip_max_nodes", MIP_MAX_NODES)
            self.h.setOptionValue("mip_rel_gap", 0.0)
        self.h.passModel(lp)
        self.n_cols = n_cols
        self.level_rows: dict[str, int] = {}

    def _coef(self, name: str) -> F64:
        t = self.types
        if name == "total":
            return cast(F64, t.size[self.pt].astype(np.float64))
        column = {"tier1": 0, "tier2": 1, "tier3": 2}[name]
        return cast(F64, t.persons[self.pt, column].astype(np.float64))

    def maximise(self, name: str) -> float:
        """Maximise persons of a level (``tier1``, ``tier2`` or ``total``); the optimum."""
        h = self.h
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        h.changeColsCost(self.n_cols, np.arange(self.n_cols, dtype=np.int32), self._coef(name))
        _run(h, f"the {name} level")
        return float(h.getInfo().objective_function_value)

    def bound(self) -> float:
        """The proven upper bound of the last integer solve (the optimum for an LP)."""
        info = self.h.getInfo()
        if self.h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            return float(info.objective_function_value)
        return float(info.mip_dual_bound)

    def hold(self, name: str, at_least: float) -> None:
        """Keep a level at or above ``at_least`` from now on (a row, or its bound moved)."""
        low = at_least - _LEVEL_TOL * (1.0 + abs(at_least))
        if name in self.level_rows:
            self.h.changeRowBounds(self.level_rows[name], low, highspy.kHighsInf)
            return
        coef = self._coef(name)
        nz = np.flatnonzero(coef)
        self.level_rows[name] = self.h.getNumRow()
        self.h.addRow(low, highspy.kHighsInf, nz.size, nz.astype(np.int32), coef[nz])

    def balance(self, groups: Sequence[I64], target: F64) -> tuple[float, float]:
        """Fairness levels: minimise the largest |placed_g - target_g|, then their sum.

        A group is a destination, or a state's destinations together; ``target_g`` = fair
        share - persons received before. Both optima are held for the levels that follow.
        Returns the two LP optima.
        """
        h = self.h
        keyed = groups
        if len(keyed) == 0:
            return 0.0, 0.0
        size = self.types.size[self.pt].astype(np.float64)
        inf = highspy.kHighsInf
        z = h.getNumCol()
        h.addCol(0.0, 0.0, inf, 0, np.zeros(0, dtype=np.int32), np.zeros(0))
        e0 = h.getNumCol()
        for _ in keyed:
            h.addCol(0.0, 0.0, inf, 0, np.zeros(0, dtype=np.int32), np.zeros(0))
        n_all = h.getNumCol()
        by_dest = [np.flatnonzero(np.isin(self.pd, g)) for g in keyed]
        # placed - z <= target ; placed + z >= target
        self._deviation_rows(by_dest, [z] * len(keyed), size, target)
        h.changeObjectiveSense(highspy.ObjSense.kMinimize)
        cost = np.zeros(n_all)
        cost[z] = 1.0
        h.changeColsCost(n_all, np.arange(n_all, dtype=np.int32), cost)
        _run(h, "the largest-deviation level")
        worst = float(h.getInfo().objective_function_value)
        h.changeColBounds(z, 0.0, worst + _LEVEL_TOL * (1.0 + worst))
        self._deviation_rows(by_dest, list(range(e0, n_all)), size, target)
        cost = np.zeros(n_all)
        cost[e0:n_all] = 1.0
        h.changeColsCost(n_all, np.arange(n_all, dtype=np.int32), cost)
        _run(h, "the total-deviation level")
        total = float(h.getInfo().objective_function_value)
        idx = np.arange(e0, n_all, dtype=np.int32)
        h.addRow(-inf, total + _LEVEL_TOL * (1.0 + total), idx.size, idx, np.ones(idx.size))
        return worst, total

    def _deviation_rows(
        self, by_dest: Sequence[I64], slack: Sequence[int], size: F64, target: F64
    ) -> None:
        """Rows ``placed_k - slack_k <= target_k`` and ``placed_k + slack_k >= target_k``.

        Added in one call, in this order (row by row, HiGHS rebuilds its matrix each time).
        """
        inf = highspy.kHighsInf
        lower: list[float] = []
        upper: list[float] = []
        index: list[I64] = []
        value: list[F64] = []
        for k, cols in enumerate(by_dest):
            idx = np.concatenate([cols, [slack[k]]]).astype(np.int64)
            for bounds, sign in (((-inf, target[k]), -1.0), ((target[k], inf), 1.0)):
                lower.append(float(bounds[0]))
                upper.append(float(bounds[1]))
                index.append(idx)
                value.append(np.concatenate([size[cols], [sign]]))
        starts = np.concatenate([[0], np.cumsum([i.size for i in index])[:-1]]).astype(np.int32)
        flat_index = np.concatenate(index).astype(np.int32)
        self.h.addRows(
            len(lower),
            np.array(lower),
            np.array(upper),
            flat_index.size,
            starts,
            flat_index,
            np.concatenate(value),
        )

    def wishes(self) -> None:
        """Maximise preferences, then scores (for refined types), the levels above held."""
        h = self.h
        t = self.types
        if t.pref is None or t.score is None:
            return
        n_all = h.getNumCol()
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        for name, table in (("preferences", t.pref), ("scores", t.score)):
            coef = table[self.pt, self.pd]
            if not coef.any():
                continue
            cost = np.zeros(n_all)
            cost[: self.n_cols] = coef
            h.changeColsCost(n_all, np.arange(n_all, dtype=np.int32), cost)
            _run(h, f"the {name} level")
            best = float(h.getInfo().objective_function_value)
            nz = np.flatnonzero(coef)
            h.addRow(
                best - _LEVEL_TOL * (1.0 + abs(best)),
                highspy.kHighsInf,
                nz.size,
                nz.astype(np.int32),
                coef[nz],
            )

    def values(self) -> F64:
        values = self.h.getSolution().col_value[: self.n_cols]
        return cast(F64, np.asarray(values, dtype=np.float64))


def _fits(types: _Types, t: int, cap: I64, svc: I64, allowed: BoolArr, largest: I64) -> I64:
    """How many more units of type t each destination can take (0 where not allowed)."""
    size = int(types.size[t])
    room = np.where(allowed & (largest >= size), cap // max(size, 1), 0)
    for s in np.flatnonzero(types.needs[t]):
        room = np.minimum(room, svc[:, s] // int(types.needs[t, s]))
    return cast(I64, room)


def _round(
    types: _Types,
    t_allowed: BoolArr,
    pt: I64,
    pd: I64,
    x: F64,
    level: _Level,
    cap: I64,
    svc: I64,
    target: F64,
    count: I64,
    goal: tuple[int, int, int] | None = None,
) -> I64:
    """Integral counts y[t, d]: the LP's counts rounded down, then leftovers placed greedily.

    ``count``: how many units of each type this solve may place; ``goal``: the persons
    levels the LP reached, rounded down (the exact fix-up runs only if rounding fell short).

    The fix-up (:func:`_fix_up`) is an integer program over the leftovers and the placed
    units that may give way. Above :data:`FIX_UP_QUICK_ABOVE` pairs it is first solved with
    only the leftovers of the types the LP (or a residual LP) held fractionally, the units the
    rounding took away; that result is kept if it reaches ``goal``. Otherwise the full
    program runs (the better of the two is kept), then, if still short, the one with moves.

    ``cap``/``svc`` are the free places before these types are placed; ``target`` is the
    number of persons each destination should still receive to meet its fair share
    (``+inf``-like for none). Leftover units go most urgent first (tier-1 persons, then
    tier-2, then size, larger first) to the allowed destination that is furthest below its
    fair share, ties by the destinations' recorded tie order.
    """
    n_types = types.size.size
    n_dest = cap.size
    y = np.zeros((n_types, n_dest), dtype=np.int64)
    np.add.at(y, (pt, pd), np.floor(x + _ROUND_EPS).astype(np.int64))
    y = np.minimum(y, count[:, None])
    cap = cap - (y * types.size[:, None]).sum(axis=0)
    svc = svc - np.einsum("td,ts->ds", y, types.needs)
    # A tolerance may have rounded one unit too many somewhere: take it back.
    while (cap < 0).any() or (svc < 0).any() or (y.sum(axis=1) > count).any():
        d = (
            int(np.flatnonzero((cap < 0) | (svc < 0).any(axis=1))[0])
            if ((cap < 0).any() or (svc < 0).any())
            else -1
        )
        if d < 0:
            t = int(np.flatnonzero(y.sum(axis=1) > count)[0])
            d = int(np.flatnonzero(y[t])[-1])
        else:
            t = int(np.flatnonzero(y[:, d])[-1])
        y[t, d] -= 1
        cap[d] += types.size[t]
        svc[d] += types.needs[t]
    left = count - y.sum(axis=1)
    still = target - (y * types.size[:, None]).sum(axis=0)
    # The types the LP placed fractionally: the neighbourhood of the quick fix-up below.
    held = np.zeros(n_types, dtype=bool)
    held[pt[_fractional(x)]] = True
    for _ in range(RESIDUAL_ROUNDS):
        # The leftovers in the places left: a small LP whose vertex is nearly integral.
        more = _residual(types, t_allowed, left, cap, svc, level.largest_place, held)
        if more is None:
            break
        y += more
        left -= more.sum(axis=1)
        cap -= (more * types.size[:, None]).sum(axis=0)
        svc -= np.einsum("td,ts->ds", more, types.needs)
        still -= (more * types.size[:, None]).sum(axis=0)
    trial = y.copy()
    _greedy(types, t_allowed, trial, left.copy(), cap.copy(), svc.copy(), still.copy(), level)
    if goal is not None and _levels(trial, types) >= goal:
        return trial  # the rounding lost nothing the LP promised
    largest = level.largest_place
    full = _fix_up_pairs(types, t_allowed, y, left, cap, svc, largest)
    extra = quick = None
    if goal is not None and full is not None and full.size > FIX_UP_QUICK_ABOVE:
        # First only the leftovers of the types the LP held fractionally (with every placed
        # unit that may give way): a much smaller program, kept if it reaches the LP's levels
        # rounded down (as the greedy pass above is); else the full program decides.
        small = _fix_up_pairs(types, t_allowed, y, left, cap, svc, largest, only=held)
        if small is not None and small.size <= FIX_UP_MAX_PAIRS:  # the same cap as below
            quick = _fix_up(types, y, left, cap, svc, still, small)
        if quick is not None and _levels(y + quick, types) >= goal:
            extra = quick
    if extra is None and full is not None and full.size <= FIX_UP_MAX_PAIRS:
        extra = _fix_up(types, y, left, cap, svc, still, full)
    if quick is not None and (
        extra is None or _levels(y + quick, types) > _levels(y + extra, types)
    ):
        extra = quick
    if goal is not None and (extra is None or _levels(y + extra, types) < goal):
        wide = _fix_up_pairs(types, t_allowed, y, left, cap, svc, largest, moves=True)
        if wide is not None and wide.size <= FIX_UP_MAX_PAIRS_WITH_MOVES:
            wider = _fix_up(types, y, left, cap, svc, still, wide)
            if wider is not None and (
                extra is None or _levels(y + wider, types) > _levels(y + extra, types)
            ):
                extra = wider
    if extra is not None:
        y += extra
        left -= extra.sum(axis=1)
        cap -= (extra * types.size[:, None]).sum(axis=0)
        svc -= np.einsum("td,ts->ds", extra, types.needs)
        still -= (extra * types.size[:, None]).sum(axis=0)
        _greedy(types, t_allowed, y, left, cap, svc, still, level)
    return y


#: Rounds of re-solving the leftovers' LP in the places left, before the greedy pass.
RESIDUAL_ROUNDS = 3


def _fractional(x: F64) -> BoolArr:
    """Which LP counts are not whole (up to the rounding tolerance)."""
    fractional: BoolArr = x - np.floor(x + _ROUND_EPS) > _ROUND_EPS
    return fractional


def _residual(
    types: _Types,
    t_allowed: BoolArr,
    left: I64,
    cap: I64,
    svc: I64,
    largest: I64,
    held: BoolArr,
) -> I64 | None:
    """Whole units of the leftovers that a weighted LP over the free places puts somewhere.

    The LP maximises tier-1, then tier-2, then all persons (folded into weights, which is
    exact at this scale: the free places are few); its solution is rounded down. Types it
    holds fractionally are marked in ``held`` (in place).
    """
    fit = t_allowed & (left > 0)[:, None]
    fit &= types.size[:, None] <= np.minimum(cap, largest)[None, :]
    for s in range(svc.shape[1]):
        fit &= types.needs[:, s][:, None] <= svc[:, s][None, :]
    pt, pd = (a.astype(np.int64) for a in np.nonzero(fit))
    if pt.size == 0:
        return None
    room = float(cap.sum()) + 2.0
    cost = (
        room * room * types.persons[pt, 0] + room * types.persons[pt, 1] + types.size[pt]
    ).astype(np.float64)
    model = _Model(types, pt, pd, left, cap, svc)
    model.h.changeColsCost(pt.size, np.arange(pt.size, dtype=np.int32), cost)
    _run(model.h, "the leftovers")
    values = model.values()
    held[pt[_fractional(values)]] = True
    more = np.zeros((types.size.size, cap.size), dtype=np.int64)
    np.add.at(more, (pt, pd), np.floor(values + _ROUND_EPS).astype(np.int64))
    more = np.minimum(more, left[:, None])
    if not more.any():
        return None
    # Guard against tolerance: never exceed a free place.
    used_cap = (more * types.size[:, None]).sum(axis=0)
    used_svc = np.einsum("td,ts->ds", more, types.needs)
    if (used_cap > cap).any() or (used_svc > svc).any() or (more.sum(axis=1) > left).any():
        return None
    return more


def _greedy(
    types: _Types,
    t_allowed: BoolArr,
    y: I64,
    left: I64,
    cap: I64,
    svc: I64,
    still: F64,
    level: _Level,
) -> None:
    """Place leftover units where they fit, most urgent first, furthest below fair share
    first (in place: ``y``, ``left``, ``cap``, ``svc`` and ``still`` are updated)."""
    urgency = np.lexsort((-types.size, -types.persons[:, 1], -types.persons[:, 0]))
    for t in urgency.tolist():
        size = int(types.size[t])
        while left[t] > 0:
            room = _fits(types, t, cap, svc, t_allowed[t], level.largest_place)
            ok = np.flatnonzero(room > 0)
            if ok.size == 0:
                break
            best = ok[np.lexsort((level.order[ok], -still[ok]))[0]]
            want = max(1, int(still[best] // size)) if still[best] > 0 else 1
            k = int(min(left[t], room[best], want))
            y[t, best] += k
            left[t] -= k
            cap[best] -= k * size
            svc[best] -= k * types.needs[t]
            still[best] -= k * size


#: The exact fix-up of the units the rounding left over stops after this many branch-and-
#: bound nodes (a limit in work, not time, so that the same input gives the same output on
#: any machine); the time limit is only a safety net.
FIX_UP_MAX_NODES = 50
FIX_UP_TIME_LIMIT = 30.0
#: The fix-up is skipped above this many (type, destination) pairs (the greedy pass then
#: places the leftovers alone).
FIX_UP_MAX_PAIRS = 50_000
#: The same for the wider fix-up in which placed units may move (measured: 36,000 pairs take
#: 10 s for one person of 181,548; the gap reports what is left).
FIX_UP_MAX_PAIRS_WITH_MOVES = 5_000
#: Above this many pairs, the fix-up first tries only the types the LP held fractionally
#: (the quick fix-up), and the full one runs only if that falls short of the LP's levels.
#: Measured on synthetic batches of 50,000-100,000 cases: full fix-ups of 7,700-15,000
#: pairs took 0.8-3.6 s, the quick ones (700-2,000 pairs) 0.15-0.5 s, and 2 of 3 reached
#: the LP's levels (the third then costs its time on top); with 2,500-4,300 pairs the full
#: one took 0.25-0.45 s and the quick one 0.13-0.2 s, reaching the levels in 1 of 3.
FIX_UP_QUICK_ABOVE = 5_000


@dataclass
class _Pairs:
    """The columns of a fix-up: (type, destination) pairs that add (+1) or take away (-1)."""

    pt: I64
    pd: I64
    sign: F64
    upper: F64  # units per column

    @property
    def size(self) -> int:
        return int(self.pt.size)


def _fix_up_pairs(
    types: _Types,
    t_allowed: BoolArr,
    y: I64,
    left: I64,
    cap: I64,
    svc: I64,
    largest: I64,
    moves: bool = False,
    only: BoolArr | None = None,
) -> _Pairs | None:
    """The columns of the fix-up below (``None`` if nothing can be added).

    Leftover units may be added where they are allowed and their family fits a place, and
    placed units of a lower tier than a leftover may give way (take-away columns); with
    ``moves``, placed units that may give way can also be added elsewhere (a move). ``only``
    limits the types that may be added.
    """
    if not (left > 0).any():
        return None
    urgent_left = bool((types.persons[left > 0, 0] > 0).any())
    movable = (y > 0) & (types.persons[:, 0] == 0)[:, None]
    if not urgent_left:
        movable &= (types.persons[:, 1] == 0)[:, None]
    addable = (left > 0) | movable.any(axis=1) if moves else left > 0
    if only is not None:
        addable &= only
    fit = t_allowed & addable[:, None]
    fit &= types.size[:, None] <= largest[None, :]
    rem_t, rem_d = (a.astype(np.int64) for a in np.nonzero(movable))
    if rem_t.size == 0:
        # Nothing may move: only what fits in the free places can be added.
        fit &= (types.size[:, None] <= cap[None, :]) & (left > 0)[:, None]
        for s in range(svc.shape[1]):
            fit &= types.needs[:, s][:, None] <= svc[:, s][None, :]
    add_t, add_d = (a.astype(np.int64) for a in np.nonzero(fit))
    if add_t.size == 0:
        return None
    movable_units = (y * movable).sum(axis=1)
    return _Pairs(
        pt=np.concatenate([add_t, rem_t]),
        pd=np.concatenate([add_d, rem_d]),
        sign=np.concatenate([np.ones(add_t.size), -np.ones(rem_t.size)]),
        upper=np.concatenate([left[add_t] + movable_units[add_t], y[rem_t, rem_d]]).astype(
            np.float64
        ),
    )


def _fix_up(
    types: _Types, y: I64, left: I64, cap: I64, svc: I64, still: F64, pairs: _Pairs | None
) -> I64 | None:
    """Place the units the rounding left over, exactly: a small integer program.

    After rounding down, only the free places the LP's fractional counts held remain. The
    leftover units may take them, and placed units of a lower tier than a leftover may give
    their places up or move (so a tier-2 family can take the place of tier-3 persons); the
    columns are :func:`_fix_up_pairs`. The objective folds the persons levels into weights
    (tier-1 persons, then tier-2, then all persons) with a bonus below one person for
    destinations below their fair share; HiGHS solves it to optimality within
    :data:`FIX_UP_MAX_NODES` nodes (else its best solution is used; the reported bounds stay
    honest either way). Returns the change of the counts (``None`` for none).
    """
    if pairs is None:
        return None
    pt, pd, sign = pairs.pt, pairs.pd, pairs.sign
    w2 = float(cap.sum() + (y * types.size[:, None]).sum() + 2)
    w1 = w2 * w2
    size = types.size[pt].astype(np.float64)
    lift = np.clip(still[pd] / max(float(still.max()), 1.0), 0.0, 1.0) / (w2 + 1.0)
    value = w1 * types.persons[pt, 0] + w2 * types.persons[pt, 1] + size
    cost = (sign * value + np.where(sign > 0, size * lift, 0.0)).astype(np.float64)
    model = _Model(types, pt, pd, left, cap, svc, integer=True, sign=sign, col_upper=pairs.upper)
    model.h.setOptionValue("time_limit", FIX_UP_TIME_LIMIT)
    model.h.setOptionValue("mip_max_nodes", FIX_UP_MAX_NODES)
    model.h.changeColsCost(pt.size, np.arange(pt.size, dtype=np.int32), cost)
    model.h.run()
    if not model.h.getInfo().primal_solution_status:
        return None
    out = np.zeros((types.size.size, cap.size), dtype=np.int64)
    np.add.at(out, (pt, pd), (sign * np.rint(model.values())).astype(np.int64))
    if not out.any():
        return None
    return out


def _free(y: I64, types: _Types, level: _Level) -> tuple[I64, I64]:
    cap = level.capacity - (y * types.size[:, None]).sum(axis=0)
    svc = level.services - np.einsum("td,ts->ds", y, types.needs)
    return cast(I64, cap), cast(I64, svc)


def _repair_priority(y: I64, types: _Types, allowed: BoolArr, level: _Level) -> int:
    """Let no waiting unit stay out where it could take the place of lower-tier units.

    For a waiting unit with tier-1 persons, units without tier-1 persons may give up their
    places; for one with tier-2 persons (and no tier-1), units of tier 3 only. This is what
    "a vulnerable person never waits while a less vulnerable one takes a place she could
    have had" means, checked unit by unit; each repair raises the tier-1 (or tier-2) count, so
    it ends. Units that gave their place up are placed again wherever they still fit.
    Returns the number of units moved in.
    """
    size, needs, persons = types.size, types.needs, types.persons
    cap, svc = _free(y, types, level)
    left = types.count - y.sum(axis=1)
    moved = 0
    urgency = np.lexsort((-size, -persons[:, 1], -persons[:, 0]))
    # What each destination could offer if the units that may give way did (for tier-1
    # units: all units without tier-1 persons; for tier-2 units: tier-3 units only), kept
    # until the next move changes it.
    reach: dict[bool, tuple[I64, I64]] = {}
    evictable = {
        True: np.flatnonzero(persons[:, 0] == 0),
        False: np.flatnonzero((persons[:, 0] == 0) & (persons[:, 1] == 0)),
    }
    for t in urgency.tolist():
        if left[t] == 0 or (persons[t, 0] == 0 and persons[t, 1] == 0):
            continue
        urgent = bool(persons[t, 0] > 0)
        ev_idx = evictable[urgent]
        while left[t] > 0:
            if urgent not in reach:
                ev_y = y[ev_idx]
                reach[urgent] = (
                    cap + (ev_y * size[ev_idx, None]).sum(axis=0),
                    svc + np.einsum("td,ts->ds", ev_y, needs[ev_idx]),
                )
            reach_cap, reach_svc = reach[urgent]
            ok = allowed[t] & (level.largest_place >= size[t]) & (reach_cap >= size[t])
            ok &= (reach_svc >= needs[t][None, :]).all(axis=1)
            where = np.flatnonzero(ok)
            if where.size == 0:
                break
            # Prefer a destination where the fewest persons must give way.
            shortfall = np.maximum(size[t] - cap[where], 0)
            d = int(where[np.lexsort((level.order[where], shortfall))[0]])
            while cap[d] < size[t] or (svc[d] < needs[t]).any():
                lacking = svc[d] < needs[t]
                cands = ev_idx[y[ev_idx, d] > 0]
                helps = (
                    (needs[cands][:, lacking] > 0).any(axis=1)
                    if lacking.any()
                    else (np.ones(cands.size, dtype=bool))
                )
                pick = np.lexsort((-size[cands], persons[cands, 1] > 0, ~helps))[0]
                v = int(cands[pick])
                y[v, d] -= 1
                left[v] += 1
                cap[d] += size[v]
                svc[d] += needs[v]
            y[t, d] += 1
            left[t] -= 1
            cap[d] -= size[t]
            svc[d] -= needs[t]
            moved += 1
            reach.clear()
    if moved:
        # Units that gave way go wherever they still fit, most urgent first.
        for v in urgency.tolist():
            while left[v] > 0:
                room = _fits(types, v, cap, svc, allowed[v], level.largest_place)
                ok = np.flatnonzero(room > 0)
                if ok.size == 0:
                    break
                d = int(ok[np.argmin(level.order[ok])])
                k = int(min(left[v], room[d]))
                y[v, d] += k
                left[v] -= k
                cap[d] -= k * size[v]
                svc[d] -= k * needs[v]
    return moved


#: At most this many single-unit moves are made by the fairness local search.
MAX_BALANCE_MOVES = 20_000


def _rebalance(y: I64, types: _Types, allowed: BoolArr, level: _Level, fair: F64) -> int:
    """Move single units between destinations while that lowers the largest deviation from
    the fair share, or keeps it and lowers the sum (the persons placed do not change).

    ``fair``: each destination's fair share on everything allocated after this batch (0 for
    a destination outside the key). A unit of size s moves from a destination above its share
    to one below when ``s`` is less than their difference; while any destination is more
    than M (the largest unit) above its fair share and holds a unit of this batch, such a
    move exists, which is why the batch ends within M where capacity and links allow.
    """
    size, needs = types.size, types.needs
    cap, svc = _free(y, types, level)
    dev = (level.before + (y * size[:, None]).sum(axis=0)).astype(np.float64) - fair
    moves = 0
    while moves < MAX_BALANCE_MOVES:
        src_order = np.argsort(-dev, kind="stable")
        dst_order = np.argsort(dev, kind="stable")
        worst = float(np.abs(dev).max())
        best: tuple[float, float, int, int, int] | None = None
        for src in src_order[:6].tolist():
            held = np.flatnonzero(y[:, src] > 0)
            if held.size == 0:
                continue
            for dst in dst_order[:6].tolist():
                if dst == src or dev[dst] >= dev[src]:
                    continue
                gap = dev[src] - dev[dst]
                ok = held[allowed[held, dst] & (size[held] < gap)]
                ok = ok[(size[ok] <= cap[dst]) & (size[ok] <= level.largest_place[dst])]
                ok = ok[(needs[ok] <= svc[dst][None, :]).all(axis=1)]
                if ok.size == 0:
                    continue
                rest = np.abs(np.delete(dev, [src, dst]))
                others = float(rest.max()) if rest.size else 0.0
                old_sum = abs(dev[src]) + abs(dev[dst])
                for v in ok[np.argsort(-size[ok], kind="stable")][:4].tolist():
                    s = float(size[v])
                    a, b = dev[src] - s, dev[dst] + s
                    new_worst = max(others, abs(a), abs(b))
                    new_sum = abs(a) + abs(b)
                    # Accept only a global improvement: the largest deviation falls, or it
                    # stays and the sum falls (a neutral move would undo preferences).
                    if new_worst < worst - 1e-9 or (
                        new_worst <= worst + 1e-9 and new_sum < old_sum - 1e-9
                    ):
                        key = (new_worst - worst, new_sum - old_sum, src, dst, v)
                        if best is None or key < best:
                            best = key
            if best is not None:
                break
        if best is None:
            break
        _, _, src, dst, v = best
        y[v, src] -= 1
        y[v, dst] += 1
        cap[src] += size[v]
        cap[dst] -= size[v]
        svc[src] += needs[v]
        svc[dst] -= needs[v]
        dev[src] -= size[v]
        dev[dst] += size[v]
        moves += 1
    return moves


#: The exact tier-2 stage of the tier-1 fallback runs up to this many (type, destination)
#: pairs of tier-1 and tier-2 types (measured: 5,200 pairs take 2.3 s at the root node).
TIER2_MIP_MAX_PAIRS = 2_000
#: ... and stops after this many branch-and-bound nodes (its best solution is used).
TIER2_MIP_MAX_NODES = 100


def _start(y: I64, pt: I64, pd: I64, n_cols: int) -> Any:
    """A HiGHS starting solution from type counts (the MIP's columns are the pairs)."""
    start = highspy.HighsSolution()
    values = np.zeros(n_cols)
    values[: pt.size] = y[pt, pd]
    start.col_value = values
    return start


def _levels(y: I64, types: _Types) -> tuple[int, int, int]:
    placed = y.sum(axis=1)
    return (
        int(placed @ types.persons[:, 0]),
        int(placed @ types.persons[:, 1]),
        int(placed @ types.size),
    )


def _solve_types(
    types: _Types,
    t_allowed: BoolArr,
    level: _Level,
    stats: dict[str, int | str],
) -> tuple[I64, tuple[Level, Level, Level], tuple[float, float], tuple[float, float]]:
    """Solve the type problem: integral counts y[t, d] and what was proven about them."""
    n_dest = level.capacity.size
    size = types.size
    fit = t_allowed & (size[:, None] <= np.minimum(level.capacity, level.largest_place)[None, :])
    for s in range(level.services.shape[1]):
        fit &= types.needs[:, s][:, None] <= level.services[:, s][None, :]
    pt, pd = (a.astype(np.int64) for a in np.nonzero(fit))
    if pt.size == 0:
        stats["types"] = int(types.size.size)
        zero = Level(0, 0.0)
        y0 = np.zeros((types.size.size, n_dest), dtype=np.int64)
        return y0, (zero, zero, zero), (0.0, 0.0), (0.0, 0.0)
    keyed = np.array([d for d in range(n_dest) if level.shares[d] is not None], dtype=np.int64)
    share = np.array([float(level.shares[d]) for d in keyed], dtype=np.float64)
    before_keyed = float(level.before[keyed].sum()) if keyed.size else 0.0
    stats["types"] = int(types.size.size)
    stats["pairs"] = int(pt.size)

    def targets(total_placed: float) -> F64:
        # A destination outside the key has a fair share of 0.
        out = -level.before.astype(np.float64)
        if keyed.size:
            fair = share * (before_keyed + total_placed)
            out[keyed] = fair - level.before[keyed]
        return out

    bases: list[Any] = []  # the basis of the first total-level LP, to warm-start the bound

    def lexicographic(
        count: I64, cap: I64, svc: I64, fixed_total: float, tier1_floor: float | None
    ) -> tuple[I64, tuple[float, float, float], float, float]:
        model = _Model(types, pt, pd, count, cap, svc)
        v1 = model.maximise("tier1") if tier1_floor is None else tier1_floor
        model.hold("tier1", v1)
        v2 = model.maximise("tier2")
        model.hold("tier2", v2)
        v3 = model.maximise("total")
        if tier1_floor is None:
            bases.append(model.h.getBasis())
        model.hold("total", v3)
        target = targets(fixed_total + v3)
        keyed_target = target[keyed] - (level.capacity[keyed] - cap[keyed])
        if level.group is not None and keyed.size:
            # Regions solved as destinations: states' deviations first, then regions'.
            state_of = level.group[keyed]
            states_here = np.unique(state_of)
            worst, total_dev = model.balance(
                [keyed[state_of == g] for g in states_here],
                np.array([keyed_target[state_of == g].sum() for g in states_here]),
            )
            model.balance([np.array([d]) for d in keyed], keyed_target)
        else:
            worst, total_dev = model.balance([np.array([d]) for d in keyed], keyed_target)
        model.wishes()
        stats["lp_solves"] = int(stats.get("lp_solves", 0)) + 5
        x = model.values()
        room_target = target - (level.capacity - cap)
        goal = (int(np.floor(v1 + 1e-6)), int(np.floor(v2 + 1e-6)), int(np.floor(v3 + 1e-6)))
        y = _round(types, t_allowed & fit, pt, pd, x, level, cap, svc, room_target, count, goal)
        return y, (v1, v2, v3), worst, total_dev

    y, lp_levels, worst_lp, sum_lp = lexicographic(
        types.count, level.capacity, level.services, 0.0, None
    )
    v1_lp = lp_levels[0]
    lp_held: tuple[float, float, float] | None = lp_levels  # the LP levels behind y
    t1, t2, t3 = _levels(y, types)
    tier1_bound = float(np.floor(v1_lp + 1e-6))
    stats["tier1_mip"] = "not needed"
    if t1 < tier1_bound:
        # Rounding lost tier-1 persons: find the tier-1 optimum exactly, and if it is better,
        # fix its tier-1 placements and solve the other levels around them.
        urgent = types.persons[pt, 0] > 0
        mip = _Model(
            types, pt[urgent], pd[urgent], types.count, level.capacity, level.services, integer=True
        )
        v1_mip = mip.maximise("tier1")
        tier1_bound = min(tier1_bound, float(np.floor(mip.bound() + 1e-6)))
        stats["tier1_mip"] = _status_of(mip)
        if round(v1_mip) > t1:
            y1 = np.zeros_like(y)
            np.add.at(y1, (pt[urgent], pd[urgent]), np.rint(mip.values()).astype(np.int64))
            cap = level.capacity - (y1 * size[:, None]).sum(axis=0)
            svc = level.services - np.einsum("td,ts->ds", y1, types.needs)
            rest = np.where(types.persons[:, 0] > 0, 0, types.count)
            fixed_keyed = float((y1 * size[:, None]).sum(axis=0)[keyed].sum()) if keyed.size else 0
            y2, _, w2, s2 = lexicographic(rest, cap, svc, fixed_keyed, 0.0)
            candidate = y1 + y2
            vulnerable = (types.persons[pt, 0] > 0) | (types.persons[pt, 1] > 0)
            if int(vulnerable.sum()) <= TIER2_MIP_MAX_PAIRS:
                # Also place tier 2 exactly with the tier-1 optimum held, so that the tier-1
                # arrangement does not cost tier-2 persons; tier 3 is then solved around both.
                both = _Model(
                    types,
                    pt[vulnerable],
                    pd[vulnerable],
                    types.count,
                    level.capacity,
                    level.services,
                    integer=True,
                )
                both.h.setOptionValue("mip_max_nodes", TIER2_MIP_MAX_NODES)
                both.hold("tier1", round(v1_mip))
                both.h.setSolution(_start(y1, pt[vulnerable], pd[vulnerable], both.h.getNumCol()))
                both.maximise("tier2")
                if both.h.getInfo().primal_solution_status:
                    y12 = np.zeros_like(y)
                    np.add.at(
                        y12,
                        (pt[vulnerable], pd[vulnerable]),
                        np.rint(both.values()).astype(np.int64),
                    )
                    cap = level.capacity - (y12 * size[:, None]).sum(axis=0)
                    svc = level.services - np.einsum("td,ts->ds", y12, types.needs)
                    rest = np.where(
                        (types.persons[:, 0] > 0) | (types.persons[:, 1] > 0), 0, types.count
                    )
                    fixed_keyed = (
                        float((y12 * size[:, None]).sum(axis=0)[keyed].sum()) if keyed.size else 0
                    )
                    y3, _, w3, s3 = lexicographic(rest, cap, svc, fixed_keyed, 0.0)
                    if _levels(y12 + y3, types) > _levels(candidate, types):
                        candidate, w2, s2 = y12 + y3, w3, s3
            if _levels(candidate, types) > (t1, t2, t3):
                y, worst_lp, sum_lp, lp_held = candidate, w2, s2, None
                t1, t2, t3 = _levels(y, types)
                stats["tier1_mip"] = "used: " + str(stats["tier1_mip"])
    # Local repairs: no urgent unit waits where it could displace less urgent ones; then
    # single-unit moves towards the fair shares (persons placed unchanged).
    for _ in range(5):
        repaired = _repair_priority(y, types, t_allowed & fit, level)
        placed_keyed = float((y * size[:, None]).sum(axis=0)[keyed].sum()) if keyed.size else 0
        fair = np.zeros(n_dest, dtype=np.float64)
        if keyed.size:
            fair[keyed] = share * (before_keyed + placed_keyed)
        # (With regions as columns the LP balanced states, then regions; single-unit moves
        # judged per destination could unbalance states, so they are left out.)
        moved = 0 if level.group is not None else _rebalance(y, types, t_allowed & fit, level, fair)
        stats["priority_repairs"] = int(stats.get("priority_repairs", 0)) + repaired
        stats["balance_moves"] = int(stats.get("balance_moves", 0)) + moved
        if not repaired:
            break
    t1, t2, t3 = _levels(y, types)

    # Honest bounds: the best tier-2 with at least our tier-1, the best total with at least
    # our tier-1 and tier-2 (LP relaxations, so upper bounds on the integer optima).
    # When y reaches the LP's own tier-1 (and tier-2) optimum, the LP's next level is that
    # bound already: holding tier 1 at t1 >= v1 admits no more than holding it at v1.
    def reached(value: int, optimum: float) -> bool:
        return value >= optimum - _LEVEL_TOL * (1.0 + abs(optimum))

    b2 = b3 = None
    if lp_held is not None and reached(t1, lp_held[0]):
        b2 = lp_held[1]
        if reached(t2, lp_held[1]):
            b3 = lp_held[2]
    if b2 is None or b3 is None:
        check = _Model(types, pt, pd, types.count, level.capacity, level.services)
        check.hold("tier1", t1)
        if b2 is None:
            b2 = check.maximise("tier2")
            stats["lp_solves"] = int(stats.get("lp_solves", 0)) + 1
            check.hold("tier2", t2)
        else:
            # Same rows as the first LP at its total level, with looser holds: its optimal
            # basis stays feasible, so the simplex starts there.
            check.hold("tier2", t2)
            check.h.setBasis(bases[0])
        b3 = check.maximise("total")
        stats["lp_solves"] = int(stats.get("lp_solves", 0)) + 1
    tiers = (
        Level(t1, max(tier1_bound, t1)),
        Level(t2, max(float(np.floor(b2 + 1e-6)), t2)),
        Level(t3, max(float(np.floor(b3 + 1e-6)), t3)),
    )
    after = level.before + (y * size[:, None]).sum(axis=0)
    if keyed.size:
        fair = share * (before_keyed + float((y * size[:, None]).sum(axis=0)[keyed].sum()))
        dev = np.abs(after[keyed] - fair)
        fairness = (float(dev.max()), worst_lp), (float(dev.sum()), sum_lp)
    else:
        fairness = (0.0, 0.0), (0.0, 0.0)
    return y, tiers, fairness[0], fairness[1]


def _status_of(model: _Model) -> str:
    """The HiGHS status of a model's last solve, in words."""
    return str(model.h.modelStatusToString(model.h.getModelStatus()))


# --------------------------------------------------------------------------------------------
# From type counts to units


def _match(units: I64, dests: I64, counts: I64, level: _Level, stats: dict[str, int | str]) -> I64:
    """Give each unit (in registration order) one of the type's destination slots.

    The slots (``counts[k]`` places at ``dests[k]``) are fixed by the levels above; here the
    units' preferences, then scores, decide who goes where: an assignment LP maximising the
    preference values (a preference beats any difference in scores), then scores. It is a
    transportation problem, so the simplex vertex is integral. Units without preferences or
    scores take the remaining slots in registration order.
    """
    if dests.size == 1:
        return cast(I64, np.repeat(dests, counts))
    wanting = (level.pref.count[units] > 0) | (level.score.count[units] > 0)
    if not wanting.any():
        return cast(I64, np.repeat(dests, counts))
    wants = units[wanting]
    n_u, n_d = wants.size, dests.size
    col_of = np.full(level.capacity.size, -1, dtype=np.int64)
    col_of[dests] = np.arange(n_d)
    pref = level.pref.table(wants, col_of, n_d)
    score = level.score.table(wants, col_of, n_d)
    spread = float(np.abs(score).sum()) * 2.0 + 1.0
    utility = pref * spread + score
    out = np.empty(units.size, dtype=np.int64)
    # When every wanting unit can have its own best slot, that is optimal: no LP needed.
    favourite = utility.argmax(axis=1)
    demand = np.bincount(favourite, minlength=n_d)
    if (demand <= counts).all():
        out[wanting] = dests[favourite]
        out[~wanting] = np.repeat(dests, counts - demand)
        return out
    if n_u * n_d > MATCHING_LP_LIMIT:
        # Serial dictatorship: in registration order, each wanting unit takes the best slot
        # still free (Pareto-efficient; the exact LP is used for smaller types).
        stats["matching"] = "serial for large types"
        remaining = counts.copy()
        value = utility - level.order[dests].astype(np.float64) * 1e-9
        chosen = np.empty(n_u, dtype=np.int64)
        i = 0
        while i < n_u:
            # Everyone takes their best slot among those still free, up to the first unit
            # whose slot the units before it have used up; the choices before it stand
            # (their slot was free, and it was their best among more slots).
            best = np.where(remaining > 0, value[i:], -np.inf).argmax(axis=1)
            by_slot = np.argsort(best, kind="stable")
            rank = np.empty(best.size, dtype=np.int64)
            starts = np.searchsorted(best[by_slot], best[by_slot])
            rank[by_slot] = np.arange(best.size) - starts + 1
            late = np.flatnonzero(rank > remaining[best])
            stop = max(int(late[0]) if late.size else best.size, 1)
            chosen[i : i + stop] = best[:stop]
            remaining -= np.bincount(best[:stop], minlength=n_d)
            i += stop
        out[wanting] = dests[chosen]
        out[~wanting] = np.repeat(dests, remaining)
        return out
    # Units without wishes take whatever is left: they are not in the LP; the LP's slots per
    # destination are at most the counts, and exactly fill the wanting units.
    h = _highs()
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
    _run(h, "the preference matching")
    stats["lp_solves"] = int(stats.get("lp_solves", 0)) + 1
    x = np.asarray(h.getSolution().col_value).reshape(n_u, n_d)
    pick = x.argmax(axis=1)
    remaining = counts.copy()
    if (x[np.arange(n_u), pick] >= 0.5).all() and (
        np.bincount(pick, minlength=n_d) <= counts
    ).all():
        remaining -= np.bincount(pick, minlength=n_d)
    else:  # pragma: no cover - a vertex is integral
        for i in range(n_u):
            k = int(pick[i])
            if x[i, k] < 0.5 or remaining[k] <= 0:
                k = int(np.flatnonzero(remaining > 0)[0])
                pick[i] = k
            remaining[k] -= 1
    out[wanting] = dests[pick]
    out[~wanting] = np.repeat(dests, remaining)
    return out


def _solve_level(level: _Level, live: BoolArr, stats: dict[str, int | str]) -> _Flat:
    """Solve one level: which units go where, which wait, and the proven bounds."""
    n_units = live.size
    dest = np.full(n_units, -1, dtype=np.int64)
    tie = np.zeros(n_units, dtype=bool)
    type_of, rep, refined = _types(level, live)
    if rep.size == 0:
        zero = Level(0, 0.0)
        return _Flat(dest, tie, (zero, zero, zero), (0.0, 0.0), (0.0, 0.0), stats)
    types = _Types(
        persons=level.persons[rep],
        size=level.size[rep],
        needs=level.needs[rep],
        count=np.bincount(type_of[live], minlength=rep.size).astype(np.int64),
    )
    n_dest = level.capacity.size
    if refined:
        # Each type's average wishes (exact when every unit of the type wishes the same).
        pref = np.zeros((rep.size, n_dest))
        score = np.zeros((rep.size, n_dest))
        for table, values in ((pref, level.pref), (score, level.score)):
            t_of = type_of[values.unit]
            ok = t_of >= 0
            # Summed entry by entry in their order (np.add.at is unbuffered and in order).
            np.add.at(table, (t_of[ok], values.dest[ok]), values.value[ok])
        types.pref = pref / types.count[:, None]
        types.score = score / types.count[:, None]
    y, tiers, max_dev, sum_dev = _solve_types(types, level.allowed[rep], level, stats)
    # Units of a type in registration order, then the seeded draw.
    members = np.flatnonzero(live)
    order = members[np.lexsort((level.draw[members], level.registered[members], type_of[members]))]
    bounds = np.searchsorted(type_of[order], np.arange(rep.size + 1))
    for t in range(rep.size):
        units = order[bounds[t] : bounds[t + 1]]
        n_place = int(y[t].sum())
        if n_place == 0:
            continue
        if 0 < n_place < units.size:
            cut = level.registered[units[n_place - 1]]
            if level.registered[units[n_place]] == cut:
                tie[units[level.registered[units] == cut]] = True
        chosen = units[:n_place]
        dests = np.flatnonzero(y[t])
        dest[chosen] = _match(chosen, dests, y[t, dests], level, stats)
    return _Flat(dest, tie, tiers, max_dev, sum_dev, stats)


# --------------------------------------------------------------------------------------------
# The whole batch


def _check(problem: ColumnarProblem) -> None:
    n_dest = len(problem.dest_ids)
    n = problem.size.size
    n_serv = len(SERVICES)
    shapes = {
        "dest_state": (len(problem.dest_state), n_dest),
        "capacity": (problem.capacity.shape, (n_dest,)),
        "services": (problem.services.shape, (n_dest, n_serv)),
        "participating": (problem.participating.shape, (n_dest,)),
        "before": (problem.before.shape, (n_dest,)),
        "tier": (problem.tier.shape, (n,)),
        "needs": (problem.needs.shape, (n, n_serv)),
        "registered": (problem.registered.shape, (n,)),
        "draw": (problem.draw.shape, (n,)),
        "group": (problem.group.shape, (n,)),
    }
    bad = [
        f"{name} has shape {got}, expected {want}"
        for name, (got, want) in shapes.items()
        if got != want
    ]
    if problem.binding.size not in (0, n):
        bad.append(f"binding has {problem.binding.size} entries, expected {n}")
    if n and (problem.size.min() < 1 or problem.tier.min() < 1 or problem.tier.max() > 3):
        bad.append("every case needs size >= 1 and a tier of 1, 2 or 3")
    if (problem.capacity < 0).any() or (problem.services < 0).any():
        bad.append("capacity and service places must not be negative")
    if n and (problem.needs < 0).any():
        bad.append("service needs must not be negative")
    for name, rows, width in (
        ("excluded", problem.excluded, 2),
        ("preferences", problem.preferences, 3),
        ("score_at", problem.score_at, 2),
    ):
        if rows.ndim != 2 or rows.shape[1] != width:
            bad.append(f"{name} must have {width} columns")
        elif rows.size and (
            rows[:, 0].min() < 0
            or rows[:, 0].max() >= n
            or rows[:, 1].min() < 0
            or rows[:, 1].max() >= n_dest
        ):
            bad.append(f"{name} refers to a case or destination that does not exist")
    if problem.score_value.shape != (problem.score_at.shape[0],):
        bad.append("score_value needs one value per score_at row")
    if bad:
        raise InputError("invalid columnar problem: " + "; ".join(bad))


def _wishes(rows: I64, values: F64, unit: I64, column: I64, n_units: int) -> _Wishes:
    """Per unit and column: the sum over the unit's cases of each case's best value there."""
    if rows.shape[0] == 0:
        return _Wishes.summed(rows[:, 0], column, values, n_units)
    width = int(column.max()) + 1
    cases = rows[:, 0]
    if _sorted_and_distinct(cases, column, width):
        # Each case names each column once (the commonest input): every value is its case's
        # best there, already in input order.
        return _Wishes.summed(unit[cases], column, values, n_units)
    key, first, inverse = np.unique(cases * width + column, return_index=True, return_inverse=True)
    best = np.full(key.size, -np.inf)
    np.maximum.at(best, inverse.reshape(-1), values)
    order = np.argsort(first, kind="stable")  # the cases' (case, column) pairs in input order
    key = key[order]
    return _Wishes.summed(unit[key // width], key % width, best[order], n_units)


#: Up to this many (case, column) cells (64 MB of counts), :func:`_sorted_and_distinct`
#: counts them directly; above, the general path runs.
_DISTINCT_CELLS = 1 << 23


def _sorted_and_distinct(cases: I64, column: I64, width: int) -> bool:
    """Whether the rows come case by case and no case names a column twice."""
    if cases.size < 2:
        return True
    if bool((cases[1:] < cases[:-1]).any()):
        return False
    cells = (int(cases[-1]) + 1) * width
    if cells > _DISTINCT_CELLS:
        return False
    return int(np.bincount(cases * width + column, minlength=cells).max()) <= 1


def _rank(codes: Sequence[str], seed: int) -> I64:
    drawn = {code: i for i, code in enumerate(lottery_order(list(codes), seed))}
    return np.array([drawn[c] for c in codes], dtype=np.int64)


def solve_columns(problem: ColumnarProblem, *, seed: int = 0) -> ColumnarResult:
    """Allocate one batch given as columns (see :class:`ColumnarProblem`).

    Units (linked groups) are first shared between the states, then, for a state given as
    regions, between its regions (a region's fair share is its state's, split in proportion
    to free capacity, as the issue and docs/allocation.md define). ``seed`` draws the tie
    order of destinations (:func:`fairshare.ledger.lottery_order`); the tie order of cases
    is ``problem.draw``.
    """
    _check(problem)
    stats: dict[str, int | str] = {"solver": f"HiGHS {_highs().version()}"}
    n = problem.size.size
    n_serv = len(SERVICES)
    states = tuple(dict.fromkeys(problem.dest_state))
    state_ix = {s: i for i, s in enumerate(states)}
    dest_state = np.array([state_ix[s] for s in problem.dest_state], dtype=np.int64)
    n_states = len(states)
    part = problem.participating.astype(bool)
    # ---- units: linked groups of cases
    _, unit = np.unique(problem.group, return_inverse=True)
    unit = unit.reshape(-1).astype(np.int64)
    n_units = int(unit.max()) + 1 if n else 0
    persons = np.zeros((n_units, 3), dtype=np.int64)
    for k in range(3):
        persons[:, k] = np.bincount(
            unit, weights=problem.size * (problem.tier == k + 1), minlength=n_units
        ).astype(np.int64)
    needs = np.zeros((n_units, n_serv), dtype=np.int64)
    for s in range(n_serv):
        needs[:, s] = np.bincount(unit, weights=problem.needs[:, s], minlength=n_units).astype(
            np.int64
        )
    big = np.iinfo(np.int64).max
    registered = np.full(n_units, big, dtype=np.int64)
    np.minimum.at(registered, unit, problem.registered)
    draw = np.full(n_units, big, dtype=np.int64)
    np.minimum.at(draw, unit, problem.draw)
    # ---- where each unit may go, by state
    state_part = np.zeros(n_states, dtype=bool)
    np.logical_or.at(state_part, dest_state, part)
    allowed = np.broadcast_to(state_part, (n_units, n_states)).copy()
    excluded_pairs = np.zeros((0, 2), dtype=np.int64)
    if problem.excluded.size:
        # A unit is kept out of a state when every participating destination of it is
        # excluded for one of the unit's cases; single regions are excluded at the next level.
        excluded_pairs = np.unique(
            np.stack([unit[problem.excluded[:, 0]], problem.excluded[:, 1]], axis=1), axis=0
        )
        excluded_pairs = excluded_pairs[part[excluded_pairs[:, 1]]]
        per_state = np.bincount(dest_state[part], minlength=n_states)
        pair_state = excluded_pairs[:, 0] * n_states + dest_state[excluded_pairs[:, 1]]
        hit, times = np.unique(pair_state, return_counts=True)
        full = hit[times >= per_state[hit % n_states]]
        allowed[full // n_states, full % n_states] = False
    link_wait = np.zeros(n_units, dtype=bool)
    binding = problem.binding if problem.binding.size else np.full(n, NO_BINDING, np.int64)
    if (binding == BINDING_UNAVAILABLE).any():
        link_wait[unit[binding == BINDING_UNAVAILABLE]] = True
    bound_cases = np.flatnonzero(binding >= 0)
    if bound_cases.size:
        code_of = np.array([state_ix.get(s, -1) for s in problem.binding_states], dtype=np.int64)
        target = code_of[binding[bound_cases]]
        mask = np.arange(n_states)[None, :] == target[:, None]
        np.logical_and.at(allowed, unit[bound_cases], mask)
        link_wait[unit[bound_cases[target < 0]]] = True
        # Two links of one linked group binding different states cannot both be honoured.
        first = np.full(n_units, -1, dtype=np.int64)
        np.maximum.at(first, unit[bound_cases], target)
        last = np.full(n_units, big, dtype=np.int64)
        np.minimum.at(last, unit[bound_cases], target)
        link_wait[unit[bound_cases][first[unit[bound_cases]] != last[unit[bound_cases]]]] = True
    allowed[link_wait] = False
    # ---- states as the first level
    cap_s = np.bincount(dest_state, weights=problem.capacity * part, minlength=n_states)
    largest = np.zeros(n_states, dtype=np.int64)
    np.maximum.at(largest, dest_state, problem.capacity * part)
    svc_s = np.zeros((n_states, n_serv), dtype=np.int64)
    np.add.at(svc_s, dest_state, problem.services * part[:, None])
    before_s = np.bincount(dest_state, weights=problem.before, minlength=n_states).astype(np.int64)
    before_s += np.array([problem.state_before.get(s, 0) for s in states], dtype=np.int64)
    keyed_total = sum(
        (problem.shares.get(s, Fraction(0)) for i, s in enumerate(states) if state_part[i]),
        Fraction(0),
    )
    shares: list[Fraction | None] = [
        problem.shares[s] / keyed_total
        if state_part[i] and keyed_total > 0 and s in problem.shares
        else None
        for i, s in enumerate(states)
    ]
    pref_rows = problem.preferences
    pref_value = (
        (pref_rows[:, 2].max() + 1 - pref_rows[:, 2]).astype(np.float64)
        if pref_rows.size
        else np.zeros(0)
    )
    top = _Level(
        persons=persons,
        needs=needs,
        allowed=allowed,
        registered=registered,
        draw=draw,
        capacity=cap_s.astype(np.int64),
        services=svc_s,
        largest_place=largest,
        before=before_s,
        shares=shares,
        order=_rank(states, seed),
        pref=_wishes(pref_rows, pref_value, unit, dest_state[pref_rows[:, 1]], n_units),
        score=_wishes(
            problem.score_at,
            problem.score_value,
            unit,
            dest_state[problem.score_at[:, 1]],
            n_units,
        ),
    )
    live: BoolArr = np.asarray(allowed.any(axis=1), dtype=bool)
    regions = any(x != y for x, y in zip(problem.dest_ids, problem.dest_state, strict=True))
    if regions and len(problem.dest_ids) <= FLAT_DESTINATIONS:
        # Few destinations: regions are solved as destinations in one problem (exact
        # family fit per region), with fair shares split over regions by capacity.
        flat = _flat_level(problem, top, part, dest_state, excluded_pairs, unit, seed)
        first_level = _solve_level(flat, live, stats)
        unit_dest = first_level.dest.copy()
        tie = first_level.tie.copy()
    else:
        first_level = _solve_level(top, live, stats)
        unit_dest = np.full(n_units, -1, dtype=np.int64)
        tie = first_level.tie.copy()
        # ---- the destinations of each state
        dests_of = [np.flatnonzero((dest_state == i) & part) for i in range(n_states)]
        placed_units_of = [np.flatnonzero(first_level.dest == i) for i in range(n_states)]
        for i in range(n_states):
            members, dests = placed_units_of[i], dests_of[i]
            if members.size == 0:
                continue
            if dests.size == 1:
                unit_dest[members] = dests[0]
                continue
            caps = problem.capacity[dests]
            weight = int(caps.sum())
            sub_shares: list[Fraction | None] = [
                Fraction(int(c), weight) if weight else Fraction(1, dests.size) for c in caps
            ]
            local = np.full(len(problem.dest_ids), -1, dtype=np.int64)
            local[dests] = np.arange(dests.size)
            in_state = np.isin(problem.preferences[:, 1], dests) if pref_rows.size else None
            sub = _Level(
                persons=persons[members],
                needs=needs[members],
                allowed=_region_allowed(members, dests, excluded_pairs),
                registered=registered[members],
                draw=draw[members],
                capacity=caps.astype(np.int64),
                services=problem.services[dests].astype(np.int64),
                largest_place=caps.astype(np.int64),
                before=problem.before[dests].astype(np.int64),
                shares=sub_shares,
                order=_rank([problem.dest_ids[d] for d in dests], seed),
                pref=_local_wishes(
                    _rows_naming(pref_rows, pref_value, in_state), unit, members, local
                ),
                score=_local_wishes(
                    _rows_naming(
                        problem.score_at,
                        problem.score_value,
                        np.isin(problem.score_at[:, 1], dests) if problem.score_at.size else None,
                    ),
                    unit,
                    members,
                    local,
                ),
            )
            region_stats: dict[str, int | str] = {}
            second = _solve_level(sub, np.ones(members.size, dtype=bool), region_stats)
            stats["lp_solves"] = int(stats.get("lp_solves", 0)) + int(
                region_stats.get("lp_solves", 0)
            )
            ok = second.dest >= 0
            unit_dest[members[ok]] = dests[second.dest[ok]]
            tie[members] |= second.tie
    # ---- why the others wait
    size_u = persons.sum(axis=1)
    placed_d = np.bincount(
        unit_dest[unit_dest >= 0], weights=size_u[unit_dest >= 0], minlength=len(problem.dest_ids)
    ).astype(np.int64)
    used_svc = np.zeros_like(problem.services)
    np.add.at(used_svc, unit_dest[unit_dest >= 0], needs[unit_dest >= 0])
    free_d = (problem.capacity - placed_d) * part
    free_svc_d = (problem.services - used_svc) * part[:, None]
    free_largest = np.zeros(n_states, dtype=np.int64)
    np.maximum.at(free_largest, dest_state, free_d)
    free_svc_s = np.zeros((n_states, n_serv), dtype=np.int64)
    np.maximum.at(free_svc_s, dest_state, free_svc_d)
    wait_u = np.zeros(n_units, dtype=np.int64)
    waiting = np.flatnonzero(unit_dest < 0)
    service_ok = allowed[waiting].copy()
    for s in range(n_serv):
        service_ok &= needs[waiting, s][:, None] <= free_svc_s[None, :, s]
    wait_u[waiting] = np.where(
        service_ok.any(axis=1) | ~allowed[waiting].any(axis=1), WAIT_CAPACITY, WAIT_SERVICE
    )
    wait_u[waiting[link_wait[waiting]]] = WAIT_LINK
    # ---- levels and fairness over the final placement
    t1 = int(persons[unit_dest >= 0, 0].sum())
    t2 = int(persons[unit_dest >= 0, 1].sum())
    t3 = int(size_u[unit_dest >= 0].sum())
    b = first_level.tiers
    tiers = (
        Level(t1, max(b[0].bound, t1)),
        Level(t2, max(b[1].bound, t2)),
        Level(t3, max(b[2].bound, t3)),
    )
    fair_share, _ = _fair_shares(problem, states, dest_state, shares, placed_d, before_s)
    # Deviations over the participating destinations (regions count one by one). The LP
    # values are bounds for states; with regions only the trivial bound 0 is claimed.
    dev = [
        abs(float(problem.before[d] + placed_d[d] - f))
        for d, f in enumerate(fair_share)
        if f is not None
    ]
    regions = any(a != b for a, b in zip(problem.dest_ids, problem.dest_state, strict=True))
    max_dev = (max(dev, default=0.0), 0.0 if regions else first_level.max_dev[1])
    sum_dev = (float(sum(dev)), 0.0 if regions else first_level.sum_dev[1])
    return ColumnarResult(
        destination=np.where(unit_dest[unit] >= 0, unit_dest[unit], -1).astype(np.int64),
        wait=wait_u[unit],
        tie_draw=tie[unit],
        unit=unit,
        placed=placed_d,
        tiers=tiers,
        fair_share=fair_share,
        max_abs_deviation=max_dev,
        sum_abs_deviation=sum_dev,
        stats=stats,
    )


#: Up to this many destinations, regions are solved in one problem with the states'
#: other destinations; above it, states first, then each state's regions (docs/allocation.md).
FLAT_DESTINATIONS = 200


def _flat_level(
    problem: ColumnarProblem,
    top: _Level,
    part: BoolArr,
    dest_state: I64,
    excluded_pairs: I64,
    unit: I64,
    seed: int,
) -> _Level:
    """The problem with every participating destination (region or state) as a column."""
    n_dest = len(problem.dest_ids)
    allowed = top.allowed[:, dest_state] & part[None, :]
    if excluded_pairs.size:
        allowed[excluded_pairs[:, 0], excluded_pairs[:, 1]] = False
    shares: list[Fraction | None] = []
    for d in range(n_dest):
        share = top.shares[int(dest_state[d])]
        if share is None or not part[d]:
            shares.append(None)
            continue
        mates = np.flatnonzero((dest_state == dest_state[d]) & part)
        weight = int(problem.capacity[mates].sum())
        split = Fraction(int(problem.capacity[d]), weight) if weight else Fraction(1, mates.size)
        shares.append(share * split)
    pref_rows = problem.preferences
    pref_value = (
        (pref_rows[:, 2].max() + 1 - pref_rows[:, 2]).astype(np.float64)
        if pref_rows.size
        else np.zeros(0)
    )
    return _Level(
        persons=top.persons,
        needs=top.needs,
        allowed=allowed,
        registered=top.registered,
        draw=top.draw,
        capacity=(problem.capacity * part).astype(np.int64),
        services=(problem.services * part[:, None]).astype(np.int64),
        largest_place=(problem.capacity * part).astype(np.int64),
        before=problem.before.astype(np.int64),
        shares=shares,
        order=_rank(problem.dest_ids, seed),
        group=dest_state,
        pref=_wishes(pref_rows, pref_value, unit, pref_rows[:, 1], top.persons.shape[0]),
        score=_wishes(
            problem.score_at,
            problem.score_value,
            unit,
            problem.score_at[:, 1],
            top.persons.shape[0],
        ),
    )


def _region_allowed(members: I64, dests: I64, excluded_pairs: I64) -> BoolArr:
    """Which of a state's destinations each of its units may go to (region exclusions)."""
    allowed = np.ones((members.size, dests.size), dtype=bool)
    if excluded_pairs.size:
        row = {int(u): k for k, u in enumerate(members.tolist())}
        col = {int(d): k for k, d in enumerate(dests.tolist())}
        for u, d in excluded_pairs.tolist():
            if u in row and d in col:
                allowed[row[u], col[d]] = False
    return allowed


def _rows_naming(rows: I64, values: F64, keep: BoolArr | None) -> tuple[I64, F64]:
    """The rows (and their values) that name one of a state's destinations."""
    if keep is None:
        return rows[:0], values[:0]
    return rows[keep], values[keep]


def _local_wishes(picked: tuple[I64, F64], unit: I64, members: I64, local: I64) -> _Wishes:
    """The rows' values summed per member unit and local destination (``local[d]``)."""
    rows, values = picked
    n_units = max(int(unit.max()) if unit.size else -1, int(members.max()) if members.size else -1)
    position = np.full(n_units + 1, -1, dtype=np.int64)
    position[members] = np.arange(members.size)
    k = position[unit[rows[:, 0]]]
    ok = k >= 0
    return _Wishes.summed(k[ok], local[rows[ok, 1]], values[ok], members.size)


def _fair_shares(
    problem: ColumnarProblem,
    states: Sequence[str],
    dest_state: I64,
    shares: Sequence[Fraction | None],
    placed: I64,
    before_s: I64,
) -> tuple[list[Fraction | None], list[Fraction | None]]:
    """Exact fair shares per destination and per state on everything allocated so far."""
    placed_s = np.bincount(dest_state, weights=placed, minlength=len(states)).astype(np.int64)
    total = sum((int(before_s[i] + placed_s[i]) for i, f in enumerate(shares) if f is not None), 0)
    fair_state = [None if f is None else f * total for f in shares]
    out: list[Fraction | None] = []
    for d in range(len(problem.dest_ids)):
        i = int(dest_state[d])
        fs = fair_state[i]
        if fs is None or not problem.participating[d]:
            out.append(None)
            continue
        mates = np.flatnonzero((dest_state == i) & problem.participating)
        if mates.size == 1:
            out.append(fs)
            continue
        weight = int(problem.capacity[mates].sum())
        part = Fraction(int(problem.capacity[d]), weight) if weight else Fraction(1, mates.size)
        out.append(fs * part)
    return out, fair_state
