"""The engine's rules in a vectorised mode: whole families, the most urgent first, fair shares.

The simulator allocates tens of thousands of cases a day for two years, six times over, so it
does not build a linear program per day (``fairshare.engine.solve_columns`` does, for one
batch). It groups the day's cases into **cohorts** (family size × tier) and applies the
engine's rules to them in closed form:

1. the most urgent first — tier 1, then tier 2, then tier 3 (Directive 2013/33/EU Art. 21;
   docs/allocation.md, objective 1); within a tier, larger families first (they are the hardest
   to fit, and the singles that follow fill the gaps);
2. a family is never split: a cohort of ``c`` families of ``k`` persons is shared out in whole
   families (Regulation (EU) No 604/2013, Art. 11);
3. fairness — each family goes to the participating state with free capacity that lags most
   behind its fair share (the largest deficit, as the running fair-share ledger,
   docs/ledger.md); families are placed one at a time, so the greedy is computed exactly for
   the whole cohort by :func:`waterfill`;
4. exact ties are broken by a seeded lottery order of the states, never by input order.

All comparisons are on integers: the key's shares are integer weights ``w_d`` over ``W``
(exact for the population key; otherwise apportioned to 10⁹ parts and clearly rounded), so the
deficit of state d after N persons, times W, is ``w_d · N − received_d · W``.

``tests/simulation/test_engine_agreement.py`` checks on small batches that this places the same
persons per tier as the engine and stays within its fairness bound (M).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt

__all__ = ["KeyLedger", "integer_weights", "take_proportional", "waterfill"]

I64 = npt.NDArray[np.int64]

#: Shares whose common denominator exceeds this are apportioned to ``ROUNDED_PARTS`` parts.
EXACT_LIMIT = 2_000_000_000
ROUNDED_PARTS = 1_000_000_000


def integer_weights(shares: Mapping[str, Fraction], states: Sequence[str]) -> tuple[I64, int, bool]:
    """Integer weights ``w`` (one per state in ``states``; 0 outside the key), their sum and
    whether they are exact.

    Exact when the shares' common denominator is at most 2·10⁹ (the population key: the
    populations themselves); otherwise the shares are apportioned to 10⁹ parts by largest
    remainders (ties by state code), so a fair share is off by less than N·10⁻⁹ persons.

    >>> integer_weights({"A": Fraction(1, 3), "B": Fraction(2, 3)}, ["A", "B", "C"])
    (array([1, 2, 0]), 3, True)
    """
    den = 1
    for s in shares.values():
        den = den * s.denominator // math.gcd(den, s.denominator)
        if den > EXACT_LIMIT:
            break
    if den <= EXACT_LIMIT:
        w = [int(shares.get(c, Fraction(0)) * den) for c in states]
        g = 0
        for x in w:
            g = math.gcd(g, x)
        g = g or 1
        arr = np.array([x // g for x in w], dtype=np.int64)
        return arr, int(arr.sum()), True
    quotas = {c: shares.get(c, Fraction(0)) * ROUNDED_PARTS for c in states}
    floors = {c: int(q) for c, q in quotas.items()}
    left = ROUNDED_PARTS - sum(floors.values())
    order = sorted(states, key=lambda c: (-(quotas[c] - floors[c]), c))
    for c in order[:left]:
        floors[c] += 1
    arr = np.array([floors[c] for c in states], dtype=np.int64)
    return arr, ROUNDED_PARTS, False


def waterfill(gap: I64, unit: int, count: int, limit: I64, rank: I64) -> I64:
    """Share ``count`` families among states one at a time, each to the largest ``gap``.

    ``gap``: int64 per state (a deficit, scaled); ``unit``: how much one family lowers the gap
    of the state it goes to; ``limit``: the most families a state may take (capacity; 0 =
    not eligible); ``rank``: the lottery order that breaks exact ties (lower first). Returns
    the families per state. Placing one at a time at the largest gap, with ties by rank, gives
    exactly the ``count`` largest of the values ``gap_d − j·unit`` (j = 0, 1, … below the
    limit), which is what is computed here, without a loop over families.

    >>> waterfill(np.array([10, 4, 0]), 5, 3, np.array([9, 9, 9]), np.array([0, 1, 2]))
    array([2, 1, 0])
    """
    n_states = gap.size
    out = np.zeros(n_states, dtype=np.int64)
    cap = np.minimum(np.maximum(limit, 0), count)
    if count <= 0 or not cap.any():
        return out
    if int(cap.sum()) <= count:
        return cap.astype(np.int64)
    # Only values at or above a floor with at least ``count`` candidates above it can be among
    # the count largest: bound the candidates per state by the first such floor found.
    floor_value = int(gap[cap > 0].max())
    while True:
        floor_value -= count * unit
        reach = np.where(gap >= floor_value, (gap - floor_value) // unit + 1, 0)
        if int(np.minimum(cap, reach).sum()) >= count:
            break
    cap = np.minimum(cap, reach)
    width = int(cap.max())
    j = np.arange(width, dtype=np.int64)
    valid = j[None, :] < cap[:, None]
    values = (gap[:, None] - j[None, :] * unit)[valid]
    owner = np.nonzero(valid)[0]
    if values.size <= count:
        return np.bincount(owner, minlength=n_states).astype(np.int64)
    cut = values.size - count
    threshold = np.partition(values, cut)[cut]
    above = values > threshold
    out += np.bincount(owner[above], minlength=n_states)
    need = count - int(above.sum())
    if need:
        tied = owner[values == threshold]
        tied = tied[np.argsort(rank[tied], kind="stable")][:need]
        out += np.bincount(tied, minlength=n_states)
    return out.astype(np.int64)


def take_proportional(counts: I64, n: int) -> I64:
    """Take ``n`` of the families in ``counts`` (per entry state), in proportion to ``counts``.

    Largest remainders, exact; ties go to the lower index (the entry states' fixed order,
    a bookkeeping choice that changes no state's total). ``n`` ≤ ``counts.sum()``.

    >>> take_proportional(np.array([3, 1, 0]), 2)
    array([2, 0, 0])
    """
    total = int(counts.sum())
    if n >= total:
        return counts.copy()
    if n <= 0:
        return np.zeros_like(counts)
    base = counts * n // total
    rem = counts * n - base * total
    left = n - int(base.sum())
    if left:
        order = np.lexsort((np.arange(counts.size), -rem))[:left]
        base[order] += 1
    return base


def lottery_rank(states: Sequence[str], seed: int) -> I64:
    """The tie order of the states: ``random.Random(seed).shuffle(sorted(states))``, as the
    ledger draws it (docs/ledger.md); returns each state's position."""
    order = sorted(states)
    random.Random(seed).shuffle(order)
    pos = {c: i for i, c in enumerate(order)}
    return np.array([pos[c] for c in states], dtype=np.int64)


class KeyLedger:
    """A running fair-share ledger in persons over integer weights (docs/ledger.md).

    ``received`` (persons per state), ``total`` (N) and ``largest`` (M, the largest family
    placed so far). :meth:`place` shares cohorts of families by the largest deficit.
    """

    def __init__(self, weights: I64, total_weight: int, rank: I64) -> None:
        self.weights = weights.astype(np.int64)
        self.total_weight = int(total_weight)
        self.rank = rank
        self.received = np.zeros(weights.size, dtype=np.int64)
        self.total = 0
        self.largest = 0

    def place(self, size: int, count: int, room: I64 | None) -> I64:
        """Place up to ``count`` families of ``size`` persons; returns families per state.

        ``room``: free places (persons) per state, or ``None`` for no limit; it is not
        changed here. States with weight 0 receive nobody.
        """
        if count <= 0:
            return np.zeros(self.weights.size, dtype=np.int64)
        eligible = self.weights > 0
        limit = np.where(eligible, count, 0)
        if room is not None:
            limit = np.minimum(limit, np.maximum(room, 0) // size)
        target = self.total + size * count
        gap = self.weights * target - self.received * self.total_weight
        n = waterfill(gap, size * self.total_weight, count, limit.astype(np.int64), self.rank)
        placed = int(n.sum())
        if placed:
            self.received += n * size
            self.total += placed * size
            self.largest = max(self.largest, size)
        return n

    def deviation(self) -> npt.NDArray[np.float64]:
        """received − fair share per state (floats, for display)."""
        return np.asarray(
            self.received - self.weights * self.total / self.total_weight, dtype=np.float64
        )

    def within_m(self) -> bool:
        """Exactly: every state is within M of its fair share, |r·W − w·N| ≤ M·W."""
        scaled = np.abs(self.received * self.total_weight - self.weights * self.total)
        return bool((scaled <= self.largest * self.total_weight).all())
