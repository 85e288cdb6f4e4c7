"""Integer apportionment with exact arithmetic: share a whole number of seats (or people, or
places) among units in proportion to their weights.

Every comparison that decides a seat is made on integers or :class:`fractions.Fraction`;
floats never decide anything. Ties are never broken silently by input order: a tie that
decides a seat either raises :class:`~fairshare.errors.TieError` or, when a seed is given, is
broken by a seeded lottery that is recorded in the result (:class:`TieDraw`), so that every
decision can be re-run and explained.

Methods (Balinski & Young, *Fair Representation*, 2nd ed., Brookings 2001):

- ``hamilton`` (largest remainders): floors of the quotas, then the largest remainders.
- divisor methods, which give the next seat to the unit with the largest priority
  ``v / d(a)`` (``v`` its weight, ``a`` its seats so far): ``jefferson`` (d'Hondt,
  ``d(a) = a + 1``), ``webster`` (Sainte-Laguë, ``a + 1/2``), ``adams`` (``a``), ``dean``
  (``2a(a+1)/(2a+1)``) and ``huntington-hill`` (``sqrt(a(a+1))``).
- ``quota``: the quota method of Balinski & Young, "The quota method of apportionment",
  *Amer. Math. Monthly* 82(7), 1975, 701-730: Jefferson priority, but only among units that
  stay within their upper quota; it is house monotone and always within quota.

Per-unit minimums and maximums are honoured by every method (see :func:`apportion`).
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from math import lcm

from fairshare.errors import InfeasibleError, InputError, TieError

__all__ = [
    "METHODS",
    "Apportionment",
    "TieDraw",
    "apportion",
    "resolve_method",
]

#: Every accepted method name or alias, mapped to its canonical name.
METHODS: dict[str, str] = {
    "hamilton": "hamilton",
    "largest-remainder": "hamilton",
    "hare-niemeyer": "hamilton",
    "webster": "webster",
    "sainte-lague": "webster",
    "major-fractions": "webster",
    "jefferson": "jefferson",
    "dhondt": "jefferson",
    "greatest-divisors": "jefferson",
    "adams": "adams",
    "smallest-divisors": "adams",
    "huntington-hill": "huntington-hill",
    "equal-proportions": "huntington-hill",
    "dean": "dean",
    "harmonic-mean": "dean",
    "quota": "quota",
}

_DIVISOR_METHODS = frozenset({"jefferson", "webster", "adams", "dean", "huntington-hill"})
_ZERO_DIVISOR_METHODS = frozenset({"adams", "dean", "huntington-hill"})
_SEED_HINT = "pass --seed N to break it by a recorded lottery"


QUOTA_METHOD_MAX_SEATS = 5_000_000
"""The quota method is a sequence over house sizes (about 1 s per million seats here)."""


def resolve_method(name: str) -> str:
    """Return the canonical name of an apportionment method, given its name or an alias.

    Case, surrounding blanks and ``_`` versus ``-`` do not matter.

    >>> resolve_method("Sainte_Lague")
    'webster'
    """
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    try:
        return METHODS[key]
    except KeyError:
        accepted = ", ".join(sorted(METHODS))
        raise InputError(f"unknown apportionment method {name!r}; use one of: {accepted}") from None


@dataclass(frozen=True)
class TieDraw:
    """One seeded lottery among exactly tied units, recorded so the decision can be re-run and
    explained.

    ``seat`` is the number (1-based) of the first seat the lottery handed out; ``rule`` names
    the tied value (``"largest remainder 1/3"``, ``"priority 5/2"``); ``tied`` lists the tied
    units in sorted order, ``winners`` those that got the seats (sorted).
    """

    seat: int
    rule: str
    tied: tuple[str, ...]
    winners: tuple[str, ...]
    seed: int

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary with the same fields."""
        return {
            "seat": self.seat,
            "rule": self.rule,
            "tied": list(self.tied),
            "winners": list(self.winners),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Apportionment:
    """The result of :func:`apportion`.

    ``quotas`` holds the exact standard quota of each unit: the share of ``total`` it would
    get without integrality, honouring the minimums and maximums (the bounded quota, see
    :func:`apportion`). ``seats`` and ``quotas`` keep the input order of the units.
    """

    method: str
    total: int
    seats: dict[str, int]
    quotas: dict[str, Fraction]
    ties: tuple[TieDraw, ...]
    seed: int | None

    def within_quota(self) -> bool:
        """True if every unit has the floor or the ceiling of its quota."""
        return all(
            q.numerator // q.denominator <= self.seats[u] <= -(-q.numerator // q.denominator)
            for u, q in self.quotas.items()
        )


# --------------------------------------------------------------------------------------------
# Input checking
# --------------------------------------------------------------------------------------------


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_weights(weights: Mapping[str, int | Fraction]) -> tuple[list[str], list[Fraction]]:
    names: list[str] = []
    values: list[Fraction] = []
    for name, w in weights.items():
        if not isinstance(name, str):
            raise InputError(f"unit name {name!r} is not a string; name every unit by a string")
        if not (_is_int(w) or isinstance(w, Fraction)):
            raise InputError(
                f"unit {name!r}: weight {w!r} is not an int or a Fraction; give weights exactly "
                "(a float is not exact: use Fraction('0.3') instead of 0.3)"
            )
        if w < 0:
            raise InputError(f"unit {name!r}: weight {w} is negative; weights must be >= 0")
        names.append(name)
        values.append(Fraction(w))
    return names, values


def _check_bounds(names: list[str], bounds: Mapping[str, int] | None, what: str) -> dict[str, int]:
    if bounds is None:
        return {}
    known = set(names)
    out: dict[str, int] = {}
    for name, b in bounds.items():
        if name not in known:
            raise InputError(
                f"{what} given for unit {name!r}, which has no weight; "
                "give it a weight or drop the bound"
            )
        if not _is_int(b):
            raise InputError(f"unit {name!r}: {what} {b!r} is not a whole number of seats")
        if b < 0:
            raise InputError(f"unit {name!r}: {what} {b} is negative; use 0 or more seats")
        out[name] = b
    return out


# --------------------------------------------------------------------------------------------
# Bounded quotas: water-filling
# --------------------------------------------------------------------------------------------


class _Fill:
    """The piecewise linear map ``F(t) = sum_i clamp(t * w_i, lo_i, hi_i)`` and its inverse.

    ``F`` is continuous and non-decreasing; the bounded quotas of a house of size ``h`` are
    ``clamp(t * w_i, lo_i, hi_i)`` for any ``t`` with ``F(t) = h`` (they do not depend on which
    such ``t``). Units of weight 0 stay at their minimum.
    """

    def __init__(self, w: list[int], lo: list[int], hi: list[int | None]) -> None:
        self.w, self.lo, self.hi = w, lo, hi
        self.bounded = any(x > 0 for x in lo) or any(x is not None for x in hi)
        self.W = sum(w)
        # Kinks, as sorted lists with prefix sums, so that F(s) costs two bisections.
        lower = sorted((Fraction(lo[i], w[i]), i) for i in range(len(w)) if w[i] > 0)
        upper = sorted(
            (Fraction(h, w[i]), i) for i, h in enumerate(hi) if h is not None and w[i] > 0
        )
        self.lower_at = [k for k, _ in lower]
        self.upper_at = [k for k, _ in upper]
        self.lower_w = _prefix([w[i] for _, i in lower])
        self.lower_lo = _prefix([lo[i] for _, i in lower])
        self.upper_w = _prefix([w[i] for _, i in upper])
        self.upper_hi = _prefix([hi[i] or 0 for _, i in upper])
        self.fixed = sum(lo[i] for i in range(len(w)) if w[i] == 0)
        self.lo_total = sum(lo[i] for i in range(len(w)) if w[i] > 0)

    def value(self, s: Fraction) -> Fraction:
        """``F(s)``, exactly."""
        j = bisect_right(self.lower_at, s)  # units with lower kink <= s: free or capped
        k = bisect_right(self.upper_at, s)  # units with upper kink <= s: capped
        return (
            self.fixed
            + (self.lo_total - self.lower_lo[j])
            + self.upper_hi[k]
            + s * (self.lower_w[j] - self.upper_w[k])
        )

    def level(self, h: int) -> Fraction:
        """A ``t >= 0`` with ``F(t) = h``; the caller has checked that one exists."""
        if not self.bounded:
            return Fraction(h, self.W)
        points = sorted(set(self.lower_at) | set(self.upper_at))
        prev = Fraction(0)
        for p in [*points, None]:
            lo_val = self.value(prev)
            if lo_val >= h:
                return prev
            if p is None:
                slope = self.lower_w[-1] - self.upper_w[-1]
                return prev + (h - lo_val) / slope
            hi_val = self.value(p)
            if hi_val >= h:
                return prev + (h - lo_val) * (p - prev) / (hi_val - lo_val)
            prev = p
        raise AssertionError("unreachable: F is unbounded or h is feasible")  # pragma: no cover

    def quotas(self, h: int) -> list[Fraction]:
        t = self.level(h)
        out: list[Fraction] = []
        for wi, lo, hi in zip(self.w, self.lo, self.hi, strict=True):
            if wi == 0:
                out.append(Fraction(lo))
                continue
            q = max(t * wi, Fraction(lo))
            out.append(q if hi is None else min(q, Fraction(hi)))
        return out


def _prefix(xs: list[int]) -> list[int]:
    out = [0]
    for x in xs:
        out.append(out[-1] + x)
    return out


# --------------------------------------------------------------------------------------------
# The public entry point
# --------------------------------------------------------------------------------------------


def apportion(
    weights: Mapping[str, int | Fraction],
    seats: int,
    method: str = "hamilton",
    *,
    minimum: Mapping[str, int] | None = None,
    maximum: Mapping[str, int] | None = None,
    seed: int | None = None,
) -> Apportionment:
    """Share ``seats`` among the units of ``weights`` by an apportionment method, exactly.

    ``weights`` maps unit names to non-negative ints or Fractions (only their ratios matter).
    ``minimum`` and ``maximum`` give per-unit floors and caps (e.g. "at least 1", or free
    capacity). With bounds, divisor methods start every unit at its minimum and hand out the
    remaining seats one at a time by the method's priority ``v / d(a)`` among units below
    their maximum, which is the clamped divisor method (Balinski & Young 2001, ch. 4 and
    appendix A). Hamilton uses the bounded quota ``clamp(t * v_i, min_i, max_i)`` with the
    exact ``t`` that makes them sum to ``seats`` (water-filling), then floors plus largest
    remainders. The quota method runs its house-monotone sequence from the minimums, with
    eligibility by the bounded quota of the next house size.

    Units of weight 0 get seats only through their minimum. Adams, Dean and Huntington-Hill
    (``d(0) = 0``) give every unit of positive weight a first seat before anyone gets a
    second; if there are fewer seats than such units the first seats go by weight.

    A tie that decides seats (more units share the deciding value than seats remain at it)
    raises :class:`TieError` when ``seed`` is None, and is otherwise broken by a lottery with
    ``random.Random(seed)`` over the tied units sorted by name, recorded in ``ties``.

    Raises :class:`InputError` for bad input and :class:`InfeasibleError` when the bounds
    cannot be met.

    >>> r = apportion({"A": 6, "B": 6, "C": 2}, 10)
    >>> r.seats
    {'A': 4, 'B': 4, 'C': 2}
    >>> apportion({"A": 6, "B": 6, "C": 2}, 11).seats  # the Alabama paradox
    {'A': 5, 'B': 5, 'C': 1}
    >>> apportion({"A": 6, "B": 6, "C": 2}, 11, "jefferson").seats
    {'A': 5, 'B': 5, 'C': 1}
    >>> apportion({"A": 3, "B": 3, "C": 4}, 2, seed=7).ties[0].tied
    ('A', 'B')
    """
    canonical = resolve_method(method)
    if not _is_int(seats):
        raise InputError(f"number of seats {seats!r} is not a whole number")
    if seats < 0:
        raise InputError(f"number of seats is {seats}; it must be 0 or more")
    if seed is not None and not _is_int(seed):
        raise InputError(f"seed {seed!r} is not a whole number")
    names, fweights = _check_weights(weights)
    mins = _check_bounds(names, minimum, "minimum")
    maxs = _check_bounds(names, maximum, "maximum")
    for name, lo_b in mins.items():
        hi_b = maxs.get(name)
        if hi_b is not None and lo_b > hi_b:
            raise InputError(
                f"unit {name!r}: minimum {lo_b} is above its maximum {hi_b}; "
                "lower the minimum or raise the maximum"
            )

    # Only ratios matter: scale the weights to integers once, so comparisons are on ints.
    scale = lcm(*(f.denominator for f in fweights)) if fweights else 1
    w = [int(f * scale) for f in fweights]
    lo = [mins.get(n, 0) for n in names]
    hi: list[int | None] = [maxs.get(n) for n in names]
    _check_feasible(names, w, lo, hi, seats)

    fill = _Fill(w, lo, hi)
    quota_list = fill.quotas(seats) if seats > 0 or fill.bounded else [Fraction(0)] * len(w)
    ctx = _Context(names, w, scale, seed)
    if canonical == "hamilton":
        result = _hamilton(ctx, quota_list, seats)
    elif canonical == "quota":
        if seats - sum(lo) > QUOTA_METHOD_MAX_SEATS:
            raise InputError(
                f"the quota method hands out seats one at a time; {seats:,} seats exceed its "
                f"limit of {QUOTA_METHOD_MAX_SEATS:,}: use hamilton or a divisor method"
            )
        result = _quota_method(ctx, fill, lo, hi, seats)
    else:
        result = _divisor(ctx, canonical, fill, lo, hi, seats)
    return Apportionment(
        method=canonical,
        total=seats,
        seats=dict(zip(names, result, strict=True)),
        quotas=dict(zip(names, quota_list, strict=True)),
        ties=tuple(ctx.draws),
        seed=seed,
    )


def _check_feasible(
    names: list[str], w: list[int], lo: list[int], hi: list[int | None], seats: int
) -> None:
    need = sum(lo)
    if need > seats:
        raise InfeasibleError(
            f"the minimums add up to {need} seats, {need - seats} more than the {seats} to "
            "share; lower the minimums or share more seats"
        )
    capacity: int | None = sum(lo[i] for i in range(len(w)) if w[i] == 0)
    for i, wi in enumerate(w):
        if wi > 0:
            h = hi[i]
            if h is None:
                capacity = None
                break
            assert capacity is not None
            capacity += h
    if capacity is not None and capacity < seats:
        zero = [n for n, wi in zip(names, w, strict=True) if wi == 0]
        note = (
            f" (units of weight 0 take no seats beyond their minimum: {', '.join(zero)})"
            if zero
            else ""
        )
        raise InfeasibleError(
            f"the units can hold at most {capacity} seats, {seats - capacity} fewer than the "
            f"{seats} to share{note}; raise the maximums, give weight to more units, or share "
            "fewer seats"
        )


class _Context:
    """Names, scaled weights, the seeded generator and the record of draws of one run."""

    def __init__(self, names: list[str], w: list[int], scale: int, seed: int | None) -> None:
        self.names, self.w, self.scale, self.seed = names, w, scale, seed
        self.rank = {i: r for r, i in enumerate(sorted(range(len(names)), key=names.__getitem__))}
        self.rng = random.Random(seed) if seed is not None else None
        self.draws: list[TieDraw] = []

    def draw(self, seat: int, rule: str, tied: list[int], k: int) -> list[int]:
        """Pick ``k`` of the ``tied`` units by the seeded lottery, or raise TieError."""
        tied_names = sorted(self.names[i] for i in tied)
        if self.rng is None or self.seed is None:
            raise TieError(
                f"seat {seat}: {', '.join(tied_names)} are exactly tied ({rule}) for {k} "
                f"seat{'s' if k != 1 else ''}; {_SEED_HINT}"
            )
        by_name = {self.names[i]: i for i in tied}
        winners = self.rng.sample(tied_names, k)
        self.draws.append(
            TieDraw(
                seat=seat,
                rule=rule,
                tied=tuple(tied_names),
                winners=tuple(sorted(winners)),
                seed=self.seed,
            )
        )
        return [by_name[n] for n in winners]


def _fmt(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


# --------------------------------------------------------------------------------------------
# Hamilton
# --------------------------------------------------------------------------------------------


def _hamilton(ctx: _Context, quotas: list[Fraction], seats: int) -> list[int]:
    """Floors of the (bounded) quotas, then one more seat to each of the largest remainders.

    Only units with a positive remainder take an extra seat; they are below their maximum
    (their quota is not a whole number), so the bounds hold. Balinski & Young 2001, ch. 2.
    """
    a = [q.numerator // q.denominator for q in quotas]
    left = seats - sum(a)
    if left == 0:
        return a
    rem = sorted(
        ((quotas[i] - a[i], i) for i in range(len(a)) if quotas[i] != a[i]),
        key=lambda t: t[0],
        reverse=True,
    )
    cut = rem[left - 1][0]
    above = [i for r, i in rem if r > cut]
    at_cut = [i for r, i in rem if r == cut]
    for i in above:
        a[i] += 1
    slots = left - len(above)
    if slots < len(at_cut):
        rule = f"largest remainder {_fmt(cut)}"
        at_cut = ctx.draw(sum(a) + 1, rule, at_cut, slots)
    for i in at_cut:
        a[i] += 1
    return a


# --------------------------------------------------------------------------------------------
# Divisor methods
# --------------------------------------------------------------------------------------------

# A priority as a sortable key: (tier, value). Tier 1 is the "infinite" priority of a unit
# with no seat under a method with d(0) = 0; among those, the larger weight comes first.
_Key = tuple[int, Fraction]


def _priority(method: str, v: int, a: int) -> _Key:
    """The exact priority of a unit with weight ``v`` and ``a`` seats for its next seat.

    Huntington-Hill's ``v / sqrt(a(a+1))`` is compared through its square ``v^2 / (a(a+1))``,
    which orders the units the same way and stays rational.
    """
    if method == "jefferson":
        return (0, Fraction(v, a + 1))
    if method == "webster":
        return (0, Fraction(2 * v, 2 * a + 1))
    if a == 0:
        return (1, Fraction(v))
    if method == "adams":
        return (0, Fraction(v, a))
    if method == "dean":
        return (0, Fraction(v * (2 * a + 1), 2 * a * (a + 1)))
    return (0, Fraction(v * v, a * (a + 1)))  # huntington-hill, squared


def _d_at_least(method: str, a: int, x: Fraction) -> bool:
    """Whether ``d(a) >= x`` for ``x >= 0``, exactly."""
    if method == "jefferson":
        return a + 1 >= x
    if method == "webster":
        return 2 * a + 1 >= 2 * x
    if method == "adams":
        return a >= x
    if method == "dean":
        return 2 * a * (a + 1) >= x * (2 * a + 1)
    return a * (a + 1) >= x * x  # huntington-hill


def _seats_above(method: str, x: Fraction) -> int:
    """The number of seats ``a`` with ``d(a) < x``: what a unit of weight ``v`` holds once
    every priority above the divisor ``v / x`` has been served.

    Every method here has ``a <= d(a) <= a + 1``, so the answer is ``ceil(x) - 1`` or
    ``ceil(x)``.
    """
    a0 = max(0, -(-x.numerator // x.denominator) - 1)
    return a0 if _d_at_least(method, a0, x) else a0 + 1


def _rule(ctx: _Context, method: str, key: _Key) -> str:
    tier, value = key
    if tier == 1:
        return f"first seat by weight {_fmt(value / ctx.scale)}"
    if method == "huntington-hill":
        return f"squared priority {_fmt(value / ctx.scale**2)}"
    return f"priority {_fmt(value / ctx.scale)}"


def _divisor(
    ctx: _Context, method: str, fill: _Fill, lo: list[int], hi: list[int | None], seats: int
) -> list[int]:
    """A divisor method, clamped to the bounds, computed exactly.

    The seats go one at a time to the largest priority ``v / d(a)`` among units below their
    maximum, starting from the minimums. To be fast for large houses the run starts from a
    point it is known to pass: with ``t`` such that the bounded quotas at ``t`` sum to
    ``seats - k`` (``k`` units of positive weight), every unit holds at least
    ``clamp(#{a: d(a) < t v}, min, max)`` seats, and these add up to at most ``seats``.
    """
    w = ctx.w
    n = len(w)
    positive = [i for i in range(n) if w[i] > 0]
    target = seats - len(positive)
    a = list(lo)
    if target > sum(lo):
        t = fill.level(target)
        for i in positive:
            x = _seats_above(method, t * w[i])
            hi_i = hi[i]
            a[i] = max(lo[i], x if hi_i is None else min(x, hi_i))
    left = seats - sum(a)
    heap: list[tuple[int, Fraction, int, int]] = []
    for i in positive:
        hi_i = hi[i]
        if hi_i is None or a[i] < hi_i:
            tier, value = _priority(method, w[i], a[i])
            heap.append((-tier, -value, ctx.rank[i], i))
    heapq.heapify(heap)
    while left > 0:
        top = heapq.heappop(heap)
        level = [top]
        while heap and heap[0][:2] == top[:2]:
            level.append(heapq.heappop(heap))
        units = [e[3] for e in level]
        if len(units) > left:
            key: _Key = (-top[0], -top[1])
            units = ctx.draw(seats - left + 1, _rule(ctx, method, key), units, left)
        for i in units:
            a[i] += 1
            hi_i = hi[i]
            if hi_i is None or a[i] < hi_i:
                tier, value = _priority(method, w[i], a[i])
                heapq.heappush(heap, (-tier, -value, ctx.rank[i], i))
        left -= len(units)
    return a


# --------------------------------------------------------------------------------------------
# The quota method
# --------------------------------------------------------------------------------------------


@dataclass
class _Episode:
    """Units tied at one priority level, from the seat where the tie first showed."""

    seat: int
    value: Fraction
    members: set[int]
    served: list[int]


def _quota_method(
    ctx: _Context, fill: _Fill, lo: list[int], hi: list[int | None], seats: int
) -> list[int]:
    """The quota method of Balinski & Young (1975), run as its house-monotone sequence.

    Going from house size ``H - 1`` to ``H``, the seat goes to the largest Jefferson priority
    ``v / (a + 1)`` among the units that are *eligible*: below their maximum and with
    ``a < q(H)``, their (bounded) quota at ``H``. Eligibility at ``H`` is ``H > F(a / v)``
    with ``F`` the water-filling map, so a unit that is not yet eligible waits in a queue
    keyed by the house size at which it becomes eligible.

    Ties: serving tied units in another order changes nothing as long as every unit tied at
    a level is eventually served at it (the other units neither see nor affect the order).
    So the run serves them in name order and watches each tie "episode"; if one is still
    unfinished when the seats run out, the tie decided seats, and the run is repeated with a
    seeded lottery at each seat of those episodes (or TieError is raised).
    """
    a, unfinished = _quota_run(ctx, fill, lo, hi, seats, lottery=frozenset())
    if not unfinished:
        return a
    if ctx.rng is None:
        ep = unfinished[0]
        rule = f"priority {_fmt(ep.value / ctx.scale)}"
        ctx.draw(ep.seat, rule, sorted(ep.members), len(ep.served))
    a, unfinished = _quota_run(
        ctx, fill, lo, hi, seats, lottery=frozenset(ep.seat for ep in unfinished)
    )
    for ep in unfinished:
        ctx.draws.append(
            TieDraw(
                seat=ep.seat,
                rule=f"priority {_fmt(ep.value / ctx.scale)}",
                tied=tuple(sorted(ctx.names[i] for i in ep.members)),
                winners=tuple(sorted(ctx.names[i] for i in ep.served)),
                seed=ctx.seed if ctx.seed is not None else 0,
            )
        )
    return a


def _quota_run(
    ctx: _Context,
    fill: _Fill,
    lo: list[int],
    hi: list[int | None],
    seats: int,
    lottery: frozenset[int],
) -> tuple[list[int], list[_Episode]]:
    """One run of the quota method; returns the seats and the unfinished tie episodes.

    Episodes that opened at a seat in ``lottery`` are decided by the seeded generator, one
    seat at a time, among their pending units sorted by name.
    """
    w = ctx.w
    names = ctx.names
    a = list(lo)
    # Integer priority keys: two distinct fractions v/(a+1) with a + 1 <= seats + 1 differ by
    # at least 1/(seats+1)^2, so -floor(v * 2^S / (a+1)) with 2^S >= (seats+1)^2 orders them
    # exactly, equalities included (smallest key = largest priority).
    shift = 2 * (seats + 1).bit_length()
    rank = ctx.rank
    bounded = fill.bounded
    total_w = fill.W

    def key_of(i: int) -> int:
        return -((w[i] << shift) // (a[i] + 1))

    def release(i: int) -> int:
        """The smallest house size at which unit i is eligible for its next seat."""
        if bounded:
            f = fill.value(Fraction(a[i], w[i]))
            return f.numerator // f.denominator + 1
        return a[i] * total_w // w[i] + 1

    house = sum(lo)
    eligible: list[tuple[int, int, int]] = []
    waiting: list[tuple[int, int, int]] = []
    for i in range(len(w)):
        hi_i = hi[i]
        if w[i] == 0 or (hi_i is not None and a[i] >= hi_i):
            continue
        r = release(i)
        if r <= house + 1:
            eligible.append((key_of(i), rank[i], i))
        else:
            waiting.append((r, rank[i], i))
    heapq.heapify(eligible)
    heapq.heapify(waiting)
    episodes: dict[int, _Episode] = {}  # unfinished episodes by key
    rng = ctx.rng
    push, pop = heapq.heappush, heapq.heappop

    def make_eligible(entry: tuple[int, int, int]) -> None:
        push(eligible, entry)
        joined = episodes.get(entry[0])
        if joined is not None:
            joined.members.add(entry[2])

    get_episode = episodes.get
    while house < seats:
        house += 1
        while waiting and waiting[0][0] <= house:
            _, r, i = pop(waiting)
            make_eligible((-((w[i] << shift) // (a[i] + 1)), r, i))
        k, r, i = eligible[0]
        ep = get_episode(k)
        if ep is None and (
            (len(eligible) > 1 and eligible[1][0] == k)
            or (len(eligible) > 2 and eligible[2][0] == k)
        ):
            ep = _Episode(
                seat=house,
                value=Fraction(w[i], a[i] + 1),
                members={e[2] for e in eligible if e[0] == k},
                served=[],
            )
            episodes[k] = ep
        if ep is None:
            pop(eligible)
        else:
            if ep.seat in lottery and rng is not None:
                level = []
                while eligible and eligible[0][0] == k:
                    level.append(pop(eligible))
                chosen = rng.choice(sorted(names[e[2]] for e in level))
                for e in level:
                    if names[e[2]] == chosen:
                        k, r, i = e
                    else:
                        push(eligible, e)
            else:
                pop(eligible)
            ep.served.append(i)
            if len(ep.served) == len(ep.members):
                del episodes[k]
        ai = a[i] = a[i] + 1
        hi_i = hi[i]
        if hi_i is not None and ai >= hi_i:
            continue
        rel = release(i) if bounded else ai * total_w // w[i] + 1
        if rel > house + 1:
            push(waiting, (rel, r, i))
        elif episodes:
            make_eligible((-((w[i] << shift) // (ai + 1)), r, i))
        else:
            push(eligible, (-((w[i] << shift) // (ai + 1)), r, i))
    return a, sorted(episodes.values(), key=lambda e: e.seat)
