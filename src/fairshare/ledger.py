"""The running fair-share ledger: what each state has received against its share, over time.

Germany's EASY system keeps such a running quota for the Länder: every person seeking
protection is assigned, one at a time, to the Land whose intake lags furthest behind its
Königstein share (§ 45 AsylG sets the quota, § 46 AsylG the assignment to the receiving
facility). This module keeps the same ledger for any key.

Definitions (used everywhere in fairshare; see docs/ledger.md):

* The participating states d have key shares s_d (exact :class:`~fractions.Fraction`, sum 1).
* After N persons have been allocated in total, state d's **fair share** is f_d = s_d · N and
  its **deviation** is received_d − f_d (positive = above its share).
* A state is **within quota** when floor(f_d) ≤ received_d ≤ ceil(f_d).
* M = ``largest_unit``, the largest case (family) ever booked through the ledger. Persons placed
  one at a time keep every state within quota (so within 1 of its fair share); once whole
  families are booked, the target becomes "within M of the fair share".

How the next person is placed (:meth:`Ledger.take`): the quota method of Balinski and Young
with Still's look-ahead eligibility test (M. L. Balinski, H. P. Young, "The quota method of
apportionment", Amer. Math. Monthly 82(7), 1975; J. W. Still, "A class of new methods for
congressional apportionment", SIAM J. Appl. Math. 37(2), 1979). Among the *eligible* states
the person goes to the one with the largest deficit s_d(N+1) − received_d; exact ties go to
the state earlier in a seeded lottery order drawn once per ledger and recorded with it.
A state is eligible when it is below its upper quota at N+1 and giving it the person leaves
every future lower quota satisfiable. Persons are placed one at a time, so the outcome does
not depend on how arrivals are cut into batches, and nobody ever loses a person (house
monotonicity).

>>> from fractions import Fraction as F
>>> ledger = Ledger.new({"A": F(1, 2), "B": F(1, 3), "C": F(1, 6)}, seed=1)
>>> ledger.take(6).placed
{'A': 3, 'B': 2, 'C': 1}
>>> ledger.take(1).placed
{'A': 1, 'B': 0, 'C': 0}
>>> ledger.deviation("A"), ledger.within_quota("A")
(Fraction(1, 2), True)
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate
from operator import add
from typing import Any, Literal

from fairshare.errors import InfeasibleError, InputError, UnknownStateError

__all__ = ["FORMAT", "VERSION", "BatchResult", "Ledger", "lottery_order"]

FORMAT = "fairshare-ledger"
"""The ``format`` tag of a ledger file."""

VERSION = 1
"""The ledger file version this module reads and writes."""

MAX_BATCH = 10_000_000
"""The most persons one :meth:`Ledger.take` places (a typo guard, not a policy limit)."""

_EXACT = re.compile(r"(0|[1-9][0-9]*)(/[1-9][0-9]*)?")


@dataclass(frozen=True)
class BatchResult:
    """One entry of the ledger's history: a batch taken (``take``) or cases booked (``record``).

    ``placed`` lists every participating state (zeros included) in code order; ``overflow`` is
    the number of persons of the batch that no state could take (never silently dropped);
    ``persons == sum(placed.values()) + overflow``. ``caps`` is the free capacity that bound the
    batch (``None`` if nothing was capped); ``units`` the case sizes booked by ``record``.
    Treat the dictionaries as read-only.
    """

    batch: int
    kind: Literal["take", "record"]
    persons: int
    placed: dict[str, int]
    overflow: int
    total_after: int
    caps: dict[str, int] | None = None
    units: dict[str, tuple[int, ...]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of this entry (see docs/ledger.md)."""
        out: dict[str, Any] = {
            "batch": self.batch,
            "kind": self.kind,
            "persons": self.persons,
            "placed": dict(self.placed),
            "overflow": self.overflow,
            "total_after": self.total_after,
        }
        if self.kind == "take":
            out["caps"] = None if self.caps is None else dict(self.caps)
        else:
            out["units"] = {c: list(v) for c, v in (self.units or {}).items()}
        return out


def lottery_order(codes: Sequence[str], seed: int) -> tuple[str, ...]:
    """The tie-break order of a ledger: the sorted codes shuffled by ``random.Random(seed)``.

    Earlier in the order wins an exact tie. Drawn once when the ledger is created and stored
    with it, so a decision can be re-run and explained (docs/DESIGN.md § 3).

    >>> lottery_order(["C", "B", "A"], seed=0)
    ('A', 'C', 'B')
    """
    order = sorted(codes)
    random.Random(seed).shuffle(order)
    return tuple(order)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class _Schedule:
    """The lower-quota deadlines of all states, for Still's look-ahead test.

    With integer weights w_j / W = s_j, state j's lower quota reaches its k-th person at house
    size ceil(k·W / w_j), its k-th *deadline*. Write S(T) = T − Σ_j max(a_j, floor(s_j T)), the
    slack of house size T: lower quotas are satisfiable at T iff S(T) ≥ 0, and S(T) equals
    (T − h) minus the number of unserved deadlines ≤ T (h = Σ a_j). Giving the next person to
    state i removes i's first deadline L_i, which lowers S by one exactly on h < T < L_i; so
    Still's test for i ("Σ_j max(a'_j, floor(s_j T)) ≤ T for h < T ≤ L_i") is
    S(T) ≥ 1 for h < T < L_i and S(L_i) ≥ 0. One scan, up to the first T with S(T) ≤ 0 (the
    first *tight* house size Z), therefore decides every state at once: i is eligible iff
    L_i < Z, or L_i = Z and S(Z) = 0. This is the earliest-deadline-first view of Still's
    method; the deadlines are kept as a difference array so each step costs O(1) plus a scan
    that usually stops after a few house sizes.
    """

    __slots__ = ("base", "h", "horizon", "next_k", "overdue", "slack", "tight", "w", "weight")

    def __init__(self, w: Sequence[int], weight: int, a: Sequence[int], h: int) -> None:
        self.w = list(w)
        self.weight = weight
        self.h = h
        self.base = h
        # slack[t - base] = 1 - (number of unserved deadlines at house size t), for t > base.
        self.slack: list[int] = [0]
        self.horizon = h
        self.overdue = 0  # unserved deadlines at house sizes <= h (lower quotas missed now)
        self.next_k: list[int] = []  # first person number whose deadline is not generated yet
        for wj, aj in zip(w, a, strict=True):
            lower = wj * h // weight
            self.overdue += max(0, lower - aj)
            self.next_k.append(max(aj, lower) + 1)
        self.tight = (h, 0)

    def deadline(self, j: int, k: int) -> int:
        """House size at which state j's lower quota reaches k persons."""
        return _ceil_div(k * self.weight, self.w[j])

    def extend(self, to: int) -> None:
        if to <= self.horizon:
            return
        to = max(to, 2 * self.horizon - self.base, self.horizon + 16)  # grow geometrically
        slack, base, weight = self.slack, self.base, self.weight
        slack.extend([1] * (to - self.horizon))
        for j, wj in enumerate(self.w):
            if not wj:
                continue
            k = self.next_k[j]
            t = _ceil_div(k * weight, wj)
            while t <= to:
                slack[t - base] -= 1
                k += 1
                t = _ceil_div(k * weight, wj)
            self.next_k[j] = k
        self.horizon = to

    def first_at_most(self, limit: int, bound: int) -> tuple[int, int] | None:
        """The first house size T in (h, limit] with S(T) ≤ bound, and S(T); else None."""
        if limit > self.horizon:
            self.extend(limit)
        threshold = bound + self.overdue  # S(T) ≤ bound  ⟺  Σ slack(h+1..T) ≤ threshold
        base, slack = self.base, self.slack
        start = self.h + 1 - base
        stop = limit - base + 1
        chunk = 32
        while start < stop:
            end = min(stop, start + chunk)
            run = list(accumulate(slack[start:end]))
            if min(run) <= threshold:
                i = next(i for i, v in enumerate(run) if v <= threshold)
                return base + start + i, bound - threshold + run[i]
            threshold -= run[-1]
            start = end
            chunk *= 4
        return None

    def admits(self, j: int, aj: int) -> bool:
        """Still's look-ahead test for giving the next person to state j (with aj persons)."""
        due = -(-(aj + 1) * self.weight // self.w[j])
        if due <= self.h:  # below its lower quota already: always admissible
            return True
        found = self.first_at_most(due, 0)
        if found is None:
            return True
        self.tight = found
        return found[0] == due and found[1] == 0

    def admits_given_tight(self, j: int, aj: int) -> bool:
        """Still's test for j, after ``admits`` has failed for another state at this step."""
        due = self.deadline(j, aj + 1)
        z, sz = self.tight
        return due < z or (due == z and sz == 0)

    def place(self, j: int, aj: int) -> None:
        """State j (which had aj persons) receives the next person; the house grows by one."""
        k = aj + 1
        h = self.h
        if k >= self.next_k[j]:  # deadline not generated yet: skip it
            self.next_k[j] = k + 1
        else:
            t = -(-k * self.weight // self.w[j])
            if t <= h:
                self.overdue -= 1
            else:
                self.slack[t - self.base] += 1
        h += 1
        self.h = h
        if h > self.horizon:
            self.extend(h)
        self.overdue += 1 - self.slack[h - self.base]


class Ledger:
    """A running fair-share ledger for a fixed key (§§ 45–46 AsylG: the EASY running quota).

    Create one with :meth:`new` or :meth:`load`; place persons with :meth:`take`; book whole
    cases placed elsewhere with :meth:`record`; persist with :meth:`save`. The read-only
    properties return copies. See the module docstring and docs/ledger.md.
    """

    def __init__(
        self,
        *,
        shares: dict[str, Fraction],
        received: dict[str, int],
        opening: dict[str, int],
        caps: dict[str, int],
        seed: int,
        largest_unit: int,
        key: dict[str, Any],
        history: list[BatchResult],
    ) -> None:
        """Use :meth:`new`, :meth:`from_dict` or :meth:`load`; they validate their input."""
        self._codes = tuple(sorted(shares))
        self._shares = {c: shares[c] for c in self._codes}
        self._weight = math.lcm(*(s.denominator for s in self._shares.values()))
        self._w = {c: int(s * self._weight) for c, s in self._shares.items()}
        self._received = {c: received.get(c, 0) for c in self._codes}
        self._opening = {c: opening.get(c, 0) for c in self._codes}
        self._total = sum(self._received.values())
        self._caps = dict(sorted(caps.items()))
        self._seed = seed
        self._tie_order = lottery_order(self._codes, seed)
        self._largest_unit = largest_unit
        self._key = key
        self._history = history

    # ------------------------------------------------------------------ construction

    @classmethod
    def new(
        cls,
        shares: Mapping[str, Fraction],
        *,
        seed: int = 0,
        caps: Mapping[str, int] | None = None,
        received: Mapping[str, int] | None = None,
        key: Mapping[str, object] | None = None,
        largest_unit: int | None = None,
    ) -> Ledger:
        """A ledger for ``shares`` (state → exact share, non-negative, summing to exactly 1).

        ``received`` opens the ledger with what each state has received so far (for example
        from historical data; missing states start at 0). ``caps`` is the free capacity per
        state (missing = unlimited), used up as persons are placed. ``key`` is metadata about
        the key (name, year, reference), stored opaquely; it must be JSON data. ``largest_unit``
        defaults to 1 if the ledger opens with persons, else 0.
        """
        clean = _check_shares(shares, "shares")
        codes = tuple(sorted(clean))
        opening = _check_counts(received or {}, codes, "received")
        if largest_unit is None:
            largest_unit = 1 if sum(opening.values()) else 0
        return cls(
            shares=clean,
            received=dict(opening),
            opening=opening,
            caps=_check_counts(caps or {}, codes, "caps"),
            seed=_check_int(seed, "seed"),
            largest_unit=_check_count(largest_unit, "largest_unit"),
            key=_check_key(key or {}),
            history=[],
        )

    # ------------------------------------------------------------------ read-only state

    @property
    def shares(self) -> dict[str, Fraction]:
        """State → exact key share, in code order."""
        return dict(self._shares)

    @property
    def received(self) -> dict[str, int]:
        """State → persons received so far (opening balance included)."""
        return dict(self._received)

    @property
    def opening(self) -> dict[str, int]:
        """State → persons the ledger was opened with."""
        return dict(self._opening)

    @property
    def total(self) -> int:
        """N, the persons allocated so far in total."""
        return self._total

    @property
    def caps(self) -> dict[str, int]:
        """State → free capacity left (states without a cap are absent)."""
        return dict(self._caps)

    @property
    def seed(self) -> int:
        """The seed of the tie-break lottery."""
        return self._seed

    @property
    def tie_order(self) -> tuple[str, ...]:
        """The tie-break lottery order (earlier wins an exact tie), see :func:`lottery_order`."""
        return self._tie_order

    @property
    def largest_unit(self) -> int:
        """M, the largest case ever booked through the ledger (1 for single persons)."""
        return self._largest_unit

    @property
    def key(self) -> dict[str, Any]:
        """The key's metadata, as given (a copy)."""
        return json.loads(json.dumps(self._key))  # type: ignore[no-any-return]

    @property
    def history(self) -> tuple[BatchResult, ...]:
        """Every batch and booking, oldest first."""
        return tuple(self._history)

    # ------------------------------------------------------------------ fair share

    def _state(self, state: str) -> str:
        if state not in self._shares:
            raise UnknownStateError(
                f"state {state!r} is not in this ledger's key; it has {', '.join(self._codes)}"
            )
        return state

    def fair_share(self, state: str) -> Fraction:
        """f_d = s_d · N."""
        return self._shares[self._state(state)] * self._total

    def deviation(self, state: str) -> Fraction:
        """received_d − f_d (positive = above its fair share)."""
        return self._received[self._state(state)] - self.fair_share(state)

    def within_quota(self, state: str) -> bool:
        """floor(f_d) ≤ received_d ≤ ceil(f_d)."""
        f = self.fair_share(state)
        return math.floor(f) <= self._received[state] <= math.ceil(f)

    def max_abs_deviation(self) -> Fraction:
        """max_d |received_d − f_d|; at most M (= ``largest_unit``) is the target."""
        return max(abs(self.deviation(c)) for c in self._codes)

    def quota_feasible(self) -> bool:
        """Whether :meth:`take` can keep every state within quota from here on.

        True when every state is within quota now and every future lower quota is still
        satisfiable (Σ_d max(received_d, floor(s_d T)) ≤ T for all T > N); always true for a
        ledger that opened empty and has only taken single persons without caps. A ledger
        opened (or booked) out of quota can fail this although every state is within quota.
        """
        if not all(self.within_quota(c) for c in self._codes):
            return False
        if any(self._received[c] for c in self._codes if not self._w[c]):
            return False
        w = [self._w[c] for c in self._codes]
        a = [self._received[c] for c in self._codes]
        # Beyond the house size where every state is at or below its fair share, S(T) ≥ 0.
        limit = max(_ceil_div(aj * self._weight, wj) for wj, aj in zip(w, a, strict=True) if wj)
        schedule = _Schedule(w, self._weight, a, self._total)
        return schedule.first_at_most(limit, -1) is None

    # ------------------------------------------------------------------ placing persons

    def set_caps(self, caps: Mapping[str, int] | None) -> None:
        """Replace the free capacity per state (``None`` or missing states: unlimited)."""
        self._caps = dict(sorted(_check_counts(caps or {}, self._codes, "caps").items()))

    def take(self, persons: int, *, caps: Mapping[str, int] | None = None) -> BatchResult:
        """Place the next ``persons`` single persons, one at a time, and book them.

        Each person goes to the eligible state with the largest deficit s_d(N+1) − received_d
        (exact ties: earlier in :attr:`tie_order`). Eligible, in order of preference:

        1. below the upper quota (received_d < s_d(N+1)), free capacity left, and passing
           Still's look-ahead test — this tier is never empty for a :meth:`quota_feasible`
           ledger without caps, which keeps every state within quota after every person;
        2. if no state passes the look-ahead (a ledger opened out of quota): below the upper
           quota with free capacity — so a state above its share receives nothing until the
           others have caught up;
        3. if every state below its upper quota is full: any state with a positive share and
           free capacity (capacity binds before the quota).

        Persons no state can take are ``overflow``: reported, not placed. ``caps`` limits this
        batch only, on top of the ledger's own free capacity (:attr:`caps`), which is used up.
        Without batch caps, ``take(a)`` then ``take(b)`` leaves the ledger exactly as
        ``take(a + b)`` (batch-size invariance).
        """
        n_persons = _check_count(persons, "persons")
        if n_persons > MAX_BATCH:
            raise InputError(
                f"{n_persons:,} persons in one batch exceed the limit of {MAX_BATCH:,} "
                "(persons are placed one at a time, about 5 s per million): split the batch"
            )
        batch_caps = _check_counts(caps or {}, self._codes, "caps")
        codes = self._codes
        n = len(codes)
        weight = self._weight
        w = [self._w[c] for c in codes]
        a = [self._received[c] for c in codes]
        rank = {c: i for i, c in enumerate(self._tie_order)}
        room: list[int | None] = []
        for c in codes:
            limits = [m[c] for m in (self._caps, batch_caps) if c in m]
            room.append(min(limits) if limits else None)
        bound = {c: r for c, r in zip(codes, room, strict=True) if r is not None}

        placed = [0] * n
        h = self._total
        schedule = _Schedule(w, weight, a, h)
        # Priority key p_d * n + (n - 1 - rank_d) with p_d = w_d (h + 1) - a_d W: the deficit
        # times W, then the lottery; p_d > 0 iff d is below its upper quota at h + 1.
        avail = [j for j in range(n) if w[j] and room[j] != 0]
        consts = [n - 1 - rank[codes[j]] - a[j] * weight * n for j in avail]
        slopes = [w[j] * n for j in avail]
        step = weight * n
        remaining = n_persons
        # keys[q] is the priority key of avail[q] for the next person, at house size h + 1.
        keys = [c + s * (h + 1) for c, s in zip(consts, slopes, strict=True)]
        while remaining and avail:
            best = max(keys)
            pos = keys.index(best)
            if best >= n and not schedule.admits(avail[pos], a[avail[pos]]):
                eligible = [
                    (k, q)
                    for q, k in enumerate(keys)
                    if k >= n and schedule.admits_given_tight(avail[q], a[avail[q]])
                ]
                if eligible:
                    pos = max(eligible)[1]
            j = avail[pos]
            schedule.place(j, a[j])
            a[j] += 1
            placed[j] += 1
            keys[pos] -= step
            h += 1
            remaining -= 1
            r = room[j]
            if r is not None:
                room[j] = r - 1
                if r == 1:
                    del avail[pos], keys[pos], slopes[pos]
            keys = list(map(add, keys, slopes))

        placed_by_code = dict(zip(codes, placed, strict=True))
        for c, k in placed_by_code.items():
            self._received[c] += k
            if c in self._caps:
                self._caps[c] -= k
        self._total = h
        if any(placed):
            self._largest_unit = max(self._largest_unit, 1)
        result = BatchResult(
            batch=len(self._history) + 1,
            kind="take",
            persons=n_persons,
            placed=placed_by_code,
            overflow=remaining,
            total_after=h,
            caps=bound or None,
        )
        self._history.append(result)
        return result

    def record(self, units: Mapping[str, Sequence[int]]) -> BatchResult:
        """Book whole cases placed elsewhere (by an allocation engine): state → case sizes.

        Updates received, total, free capacity and ``largest_unit`` (M). With families the
        quota guarantee of :meth:`take` becomes "within M of the fair share"; check it with
        :meth:`max_abs_deviation`. Raises :class:`InfeasibleError` (and books nothing) if a
        state would get more persons than its free capacity.
        """
        if not isinstance(units, Mapping):
            raise InputError("units: expected a mapping state -> list of case sizes")
        booked: dict[str, tuple[int, ...]] = {}
        for code in sorted(units):
            self._state(code)
            sizes = units[code]
            if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence):
                raise InputError(f"units[{code!r}]: expected a list of case sizes, got {sizes!r}")
            for size in sizes:
                if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                    raise InputError(
                        f"units[{code!r}]: case size {size!r} is not a positive whole number"
                    )
            booked[code] = tuple(sizes)
        placed = {c: sum(booked.get(c, ())) for c in self._codes}
        for c, k in placed.items():
            if c in self._caps and k > self._caps[c]:
                raise InfeasibleError(
                    f"{c}: {k} persons booked but only {self._caps[c]} places free; "
                    "book fewer persons there or raise its capacity"
                )
        for c, k in placed.items():
            self._received[c] += k
            if c in self._caps:
                self._caps[c] -= k
        persons = sum(placed.values())
        self._total += persons
        self._largest_unit = max([self._largest_unit, *(max(v) for v in booked.values() if v)])
        result = BatchResult(
            batch=len(self._history) + 1,
            kind="record",
            persons=persons,
            placed=placed,
            overflow=0,
            total_after=self._total,
            units={c: v for c, v in booked.items() if v},
        )
        self._history.append(result)
        return result

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the ledger (see docs/ledger.md, "File format")."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "key": self.key,
            "seed": self._seed,
            "tie_order": list(self._tie_order),
            "total": self._total,
            "largest_unit": self._largest_unit,
            "states": {
                c: {
                    "share": _exact(self._shares[c]),
                    "share_float": float(self._shares[c]),
                    "opening": self._opening[c],
                    "received": self._received[c],
                    "cap": self._caps.get(c),
                }
                for c in self._codes
            },
            "history": [b.to_dict() for b in self._history],
        }

    def to_json(self) -> str:
        """The ledger file's text: stable, human-readable, ends with a newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: object, *, source: str = "ledger") -> Ledger:
        """Rebuild a ledger from :meth:`to_dict` output, checking it is whole and consistent.

        Raises :class:`InputError` naming ``source`` and the field that is wrong.
        """
        return _parse(data, source)

    @classmethod
    def from_json(cls, text: str, *, source: str = "ledger") -> Ledger:
        """Rebuild a ledger from :meth:`to_json` text; :class:`InputError` if it is unusable."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                "the file is damaged, restore it from a backup"
            ) from None
        except (RecursionError, ValueError) as exc:
            raise InputError(f"{source}: not a ledger file ({type(exc).__name__})") from None
        return _parse(data, source)


# ---------------------------------------------------------------------- validation


def _exact(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _check_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what}: expected a whole number, got {value!r}")
    return value


def _check_count(value: object, what: str) -> int:
    value = _check_int(value, what)
    if value < 0:
        raise InputError(f"{what}: must not be negative, got {value}")
    return value


def _check_counts(values: object, codes: Sequence[str], what: str) -> dict[str, int]:
    if not isinstance(values, Mapping):
        raise InputError(f"{what}: expected a mapping state -> whole number")
    out: dict[str, int] = {}
    for code, value in values.items():
        if code not in codes:
            raise UnknownStateError(
                f"{what}: state {code!r} is not in the key; it has {', '.join(codes)}"
            )
        out[code] = _check_count(value, f"{what}[{code!r}]")
    return {c: out[c] for c in sorted(out)}


def _check_shares(shares: object, what: str) -> dict[str, Fraction]:
    if not isinstance(shares, Mapping) or not shares:
        raise InputError(f"{what}: expected a non-empty mapping state -> Fraction share")
    out: dict[str, Fraction] = {}
    for code, share in shares.items():
        if not isinstance(code, str) or not code or code != code.strip():
            raise InputError(f"{what}: state code {code!r} must be a non-empty string")
        if isinstance(share, float):
            raise InputError(
                f"{what}[{code!r}]: {share!r} is a float; give an exact share such as "
                f"Fraction('{share}')"
            )
        if isinstance(share, bool) or not isinstance(share, int | Fraction):
            raise InputError(f"{what}[{code!r}]: expected a Fraction, got {share!r}")
        if share < 0:
            raise InputError(f"{what}[{code!r}]: share {share} is negative")
        out[code] = Fraction(share)
    total = sum(out.values(), Fraction(0))
    if total != 1:
        raise InputError(
            f"{what}: shares sum to {total} (≈ {float(total):.9f}), not exactly 1; "
            "normalise them with exact Fractions"
        )
    return out


def _check_key(key: object) -> dict[str, Any]:
    if not isinstance(key, Mapping):
        raise InputError("key: expected a mapping (metadata about the key)")
    try:
        copied = json.loads(json.dumps(dict(key), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InputError(f"key: metadata must be plain JSON data ({exc})") from None
    return copied  # type: ignore[no-any-return]


def _parse(data: object, source: str) -> Ledger:
    def fail(msg: str) -> InputError:
        return InputError(f"{source}: {msg}")

    def get(obj: Mapping[str, Any], name: str, where: str = "") -> Any:
        if name not in obj:
            raise fail(f"{where}{name} is missing")
        return obj[name]

    def count(value: object, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(f"{what} must be a whole number ≥ 0, got {value!r}")
        return value

    if not isinstance(data, dict):
        raise fail("expected a JSON object at the top level")
    if data.get("format") != FORMAT:
        raise fail(f"not a fairshare ledger (format is {data.get('format')!r}, not {FORMAT!r})")
    if get(data, "version") != VERSION:
        raise fail(f"ledger version {data['version']!r} is not supported; this reads {VERSION}")

    states = get(data, "states")
    if not isinstance(states, dict) or not states:
        raise fail("states must be a non-empty object state -> entry")
    shares: dict[str, Fraction] = {}
    opening: dict[str, int] = {}
    received: dict[str, int] = {}
    caps: dict[str, int] = {}
    for code, entry in states.items():
        where = f"states.{code}."
        if not isinstance(entry, dict):
            raise fail(f"states.{code} must be an object")
        text = get(entry, "share", where)
        if not isinstance(text, str) or not _EXACT.fullmatch(text):
            raise fail(f'{where}share must be an exact fraction like "1/3", got {text!r}')
        share = Fraction(text)
        approx = get(entry, "share_float", where)
        if isinstance(approx, bool) or not isinstance(approx, int | float):
            raise fail(f"{where}share_float must be a number, got {approx!r}")
        if not math.isclose(approx, float(share), rel_tol=1e-9, abs_tol=1e-12):
            raise fail(
                f"{where}share_float {approx} disagrees with share {text}; "
                "the exact share counts — fix or remove the edit"
            )
        shares[code] = share
        opening[code] = count(get(entry, "opening", where), f"{where}opening")
        received[code] = count(get(entry, "received", where), f"{where}received")
        cap = get(entry, "cap", where)
        if cap is not None:
            caps[code] = count(cap, f"{where}cap")
    try:
        _check_shares(shares, "states")
    except InputError as exc:
        raise fail(str(exc)) from None
    codes = tuple(sorted(shares))

    total = count(get(data, "total"), "total")
    if sum(received.values()) != total:
        raise fail(f"received totals {sum(received.values())} but total says {total}")
    seed = get(data, "seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise fail(f"seed must be a whole number, got {seed!r}")
    tie_order = get(data, "tie_order")
    if tie_order != list(lottery_order(codes, seed)):
        raise fail(f"tie_order does not match the lottery drawn from seed {seed}")
    largest_unit = count(get(data, "largest_unit"), "largest_unit")
    key = get(data, "key")
    if not isinstance(key, dict):
        raise fail("key must be an object (the key's metadata)")

    raw_history = get(data, "history")
    if not isinstance(raw_history, list):
        raise fail("history must be a list")
    history: list[BatchResult] = []
    running = sum(opening.values())
    sums = dict(opening)
    for i, entry in enumerate(raw_history, start=1):
        where = f"history[{i - 1}]."
        if not isinstance(entry, dict):
            raise fail(f"history[{i - 1}] must be an object")
        if get(entry, "batch", where) != i:
            raise fail(f"{where}batch is {entry['batch']!r}, expected {i}")
        kind = get(entry, "kind", where)
        if kind not in ("take", "record"):
            raise fail(f'{where}kind must be "take" or "record", got {kind!r}')
        persons = count(get(entry, "persons", where), f"{where}persons")
        overflow = count(get(entry, "overflow", where), f"{where}overflow")
        placed_raw = get(entry, "placed", where)
        if not isinstance(placed_raw, dict) or sorted(placed_raw) != list(codes):
            raise fail(f"{where}placed must list every state of the key")
        placed = {c: count(placed_raw[c], f"{where}placed.{c}") for c in codes}
        if sum(placed.values()) + overflow != persons:
            raise fail(
                f"{where}placed ({sum(placed.values())}) plus overflow ({overflow}) "
                f"is not persons ({persons})"
            )
        running += sum(placed.values())
        total_after = count(get(entry, "total_after", where), f"{where}total_after")
        if total_after != running:
            raise fail(f"{where}total_after says {total_after} but the batches add up to {running}")
        for c in codes:
            sums[c] += placed[c]
        entry_caps: dict[str, int] | None = None
        units: dict[str, tuple[int, ...]] | None = None
        if kind == "take":
            raw_caps = get(entry, "caps", where)
            if raw_caps is not None:
                if not isinstance(raw_caps, dict) or not set(raw_caps) <= set(codes):
                    raise fail(f"{where}caps must be null or an object state -> free places")
                entry_caps = {c: count(v, f"{where}caps.{c}") for c, v in raw_caps.items()}
        else:
            if overflow:
                raise fail(f"{where}a record has no overflow")
            raw_units = get(entry, "units", where)
            if not isinstance(raw_units, dict) or not set(raw_units) <= set(codes):
                raise fail(f"{where}units must be an object state -> list of case sizes")
            units = {}
            for c, sizes in raw_units.items():
                if not isinstance(sizes, list) or not all(
                    not isinstance(s, bool) and isinstance(s, int) and s >= 1 for s in sizes
                ):
                    raise fail(f"{where}units.{c} must be a list of positive whole numbers")
                if sum(sizes) != placed[c]:
                    raise fail(f"{where}units.{c} add up to {sum(sizes)}, placed says {placed[c]}")
                if max(sizes, default=0) > largest_unit:
                    raise fail(f"{where}units.{c} has a case larger than largest_unit")
                units[c] = tuple(sizes)
        history.append(
            BatchResult(
                batch=i,
                kind=kind,
                persons=persons,
                placed=placed,
                overflow=overflow,
                total_after=total_after,
                caps=entry_caps,
                units=units,
            )
        )
    for c in codes:
        if sums[c] != received[c]:
            raise fail(
                f"states.{c}: opening plus history gives {sums[c]}, received says {received[c]}"
            )
    return Ledger(
        shares=shares,
        received=received,
        opening=opening,
        caps=caps,
        seed=seed,
        largest_unit=largest_unit,
        key=key,
        history=history,
    )
