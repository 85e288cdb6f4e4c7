"""Responsibility-sharing policies: each a small piece of data (``rules/policies.yaml``) plus a
rule (a class here) that decides, day by day, who becomes responsible for the cases registered.

The rules, named after what the law does:

* ``observed`` — no rule: where people actually applied (Eurostat migr_asyappctzm);
* :class:`FirstEntry` — Dublin III, Regulation (EU) No 604/2013, Art. 13(1): the state of
  first irregular entry is responsible;
* :class:`KeyAllocation` — every case allocated by a distribution key with the running
  fair-share ledger (the petition's population key);
* :class:`Relocation` — first entry, plus relocation of a fixed number of persons from the
  beneficiary states by a key (Council Decisions (EU) 2015/1523 and 2015/1601);
* :class:`SolidarityPool` — first entry, plus an annual solidarity pool shared by the 50/50
  key, with states that pay EUR 20,000 per relocation instead (Regulation (EU) 2024/1351,
  Arts 56–66; Art. 64);
* :class:`CorrectiveAllocation` — first entry, with corrective allocation to the states below
  their reference number once a state is above 150% of its own (Dublin IV proposal,
  COM(2016) 270).

Adding a policy: an entry in ``rules/policies.yaml`` naming an existing rule with other
parameters, or a new :class:`Rule` subclass registered in :data:`RULES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import yaml

from fairshare.errors import InputError
from fairshare.keys import compute_key
from fairshare.simulation.cohorts import (
    I64,
    KeyLedger,
    integer_weights,
    lottery_rank,
    take_proportional,
    waterfill,
)
from fairshare.simulation.flows import MAX_FAMILY

__all__ = [
    "RULES",
    "CorrectiveAllocation",
    "DayContext",
    "Decision",
    "FirstEntry",
    "KeyAllocation",
    "Policy",
    "Relocation",
    "Rule",
    "SolidarityPool",
    "builtin_policies",
    "load_policy",
    "parse_policies",
]

F64 = npt.NDArray[np.float64]
SIZES = np.arange(1, MAX_FAMILY + 1, dtype=np.int64)


@dataclass(frozen=True)
class Policy:
    """A policy as data: its name, title, rule, legal reference and parameters."""

    name: str
    title: str
    rule: str
    reference: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "name": self.name,
            "title": self.title,
            "rule": self.rule,
            "reference": self.reference,
            "params": {k: _plain(v) for k, v in self.params.items()},
        }


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def parse_policies(raw: Any, origin: str) -> dict[str, Policy]:
    """Policies from the mapping of a policies YAML file."""
    if not isinstance(raw, Mapping):
        raise InputError(f"{origin}: expected a mapping of policy names to definitions")
    out: dict[str, Policy] = {}
    for name, spec in raw.items():
        if not isinstance(spec, Mapping):
            raise InputError(f"{origin}: policy {name!r}: expected a mapping")
        rule = spec.get("rule")
        if rule not in RULES and rule != "observed":
            raise InputError(
                f"{origin}: policy {name!r}: unknown rule {rule!r}; use one of "
                f"observed, {', '.join(RULES)}"
            )
        params = {
            k: v for k, v in spec.items() if k not in ("title", "rule", "reference", "description")
        }
        out[str(name)] = Policy(
            name=str(name),
            title=" ".join(str(spec.get("title", name)).split()),
            rule=str(rule),
            reference=" ".join(str(spec.get("reference", "")).split()),
            params=params,
        )
    return out


@cache
def builtin_policies() -> dict[str, Policy]:
    """The policies shipped in ``rules/policies.yaml``, by name."""
    text = resources.files("fairshare.rules").joinpath("policies.yaml").read_text("utf-8")
    return parse_policies(yaml.safe_load(text), "rules/policies.yaml")


def load_policy(name: str, overrides: Mapping[str, Any] | None = None) -> Policy:
    """A built-in policy, with some parameters overridden (a what-if)."""
    policies = builtin_policies()
    if name not in policies:
        raise InputError(f"unknown policy {name!r}; use one of {', '.join(policies)}")
    policy = policies[name]
    if overrides:
        policy = Policy(
            policy.name, policy.title, policy.rule, policy.reference, {**policy.params, **overrides}
        )
    return policy


# --------------------------------------------------------------------------------------------
# One day's decision


@dataclass
class DayContext:
    """What a rule sees on one day: the day index and date, the free reception places per
    state (persons; ``None`` = no limit; a rule lowers it as it transfers people) and the
    seeded random generator of the run."""

    day: int
    date: date
    room: I64 | None
    rng: np.random.Generator


@dataclass
class Decision:
    """What a rule decided about the cases in the pool (int64[entry state, size, tier]).

    ``placed``: cases whose responsible state is decided (taken out of the pool; the others
    wait); ``received``: persons per responsible state; ``transferred``: persons per entry state
    and tier who must be transferred (the others stay in their entry state); ``payments``:
    EUR per state paid instead of relocating; ``moved_in``: persons per state who reach it by
    transfer (``None`` = nobody).
    """

    placed: I64
    received: I64
    transferred: I64
    payments: F64 | None = None
    moved_in: I64 | None = None


def _persons(cases: I64) -> I64:
    """Persons per entry state and tier of cases [E, K, T]."""
    return np.asarray(np.einsum("ekt,k->et", cases, SIZES), dtype=np.int64)


class Rule:
    """A policy's rule. Subclasses implement :meth:`step`; ``ledger`` is the key ledger whose
    fairness the metrics check (if any)."""

    name: ClassVar[str] = ""
    ledger: KeyLedger | None = None

    def __init__(self, policy: Policy, states: Sequence[str], seed: int, n_days: int) -> None:
        self.policy = policy
        self.states = tuple(states)
        self.index = {c: i for i, c in enumerate(self.states)}
        self.seed = seed
        self.n_days = n_days
        self.rank = lottery_rank(self.states, seed)

    def step(self, ctx: DayContext, pool: I64) -> Decision:
        """Decide about the cases in ``pool``."""
        raise NotImplementedError

    # -- helpers shared by the rules

    def _param(self, name: str, default: Any = None) -> Any:
        value = self.policy.params.get(name, default)
        if value is None:
            raise InputError(f"policy {self.policy.name}: parameter {name!r} is missing")
        return value

    def _codes(self, name: str) -> list[str]:
        codes = [str(c) for c in self.policy.params.get(name) or []]
        unknown = [c for c in codes if c not in self.index]
        if unknown:
            raise InputError(
                f"policy {self.policy.name}: {name} names {', '.join(unknown)}, not simulated"
            )
        return codes

    def _key(self, participants: Sequence[str] | None = None) -> tuple[dict[str, Fraction], int]:
        key = str(self._param("key"))
        spec = participants if participants is not None else self.policy.params.get("participants")
        year = self.policy.params.get("key_year")
        result = compute_key(key, year=year, participants=spec)
        return dict(result.shares), result.year

    def _first_entry(self, cases: I64) -> I64:
        """Persons per state when the entry state is responsible (Art. 13(1) Dublin III)."""
        return np.asarray(_persons(cases).sum(axis=1), dtype=np.int64)


def allocate_by_key(ledger: KeyLedger, cases: I64, room: I64 | None) -> tuple[I64, I64]:
    """Allocate cohorts of cases [E, K, T] by the ledger: the most urgent tier first, larger
    families first within a tier, each family whole to the state with the largest deficit
    that has room. Returns (cases placed [E, K, T], persons received per state); ``room`` is
    lowered in place."""
    placed = np.zeros_like(cases)
    received = np.zeros(ledger.weights.size, dtype=np.int64)
    for t in range(cases.shape[2]):
        for k in range(cases.shape[1] - 1, -1, -1):
            column = cases[:, k, t]
            count = int(column.sum())
            if not count:
                continue
            n = ledger.place(k + 1, count, room)
            got = int(n.sum())
            if not got:
                continue
            persons = n * (k + 1)
            received += persons
            if room is not None:
                room -= persons
            placed[:, k, t] = take_proportional(column, got)
    return placed, received


def select_budget(cases: I64, budget: int) -> I64:
    """Up to ``budget`` persons of whole families from ``cases`` [E, K, T]: the most urgent
    tier first, larger families first, each cohort taken in proportion to the entry states."""
    chosen = np.zeros_like(cases)
    for t in range(cases.shape[2]):
        for k in range(cases.shape[1] - 1, -1, -1):
            if budget < k + 1:
                continue
            column = cases[:, k, t]
            m = min(int(column.sum()), budget // (k + 1))
            if m:
                chosen[:, k, t] = take_proportional(column, m)
                budget -= m * (k + 1)
    return chosen


class FirstEntry(Rule):
    """Dublin III (Regulation (EU) No 604/2013), Art. 13(1): the Member State whose border the
    applicant irregularly crossed first is responsible. Nobody is transferred."""

    name = "first_entry"

    def step(self, ctx: DayContext, pool: I64) -> Decision:
        return Decision(
            placed=pool.copy(),
            received=self._first_entry(pool),
            transferred=np.zeros((pool.shape[0], pool.shape[2]), dtype=np.int64),
        )


class KeyAllocation(Rule):
    """Every registered case is allocated by a distribution key with the running fair-share
    ledger (docs/ledger.md): the petition's population key. Where reception capacity is short,
    cases wait at their entry state."""

    name = "key"

    def __init__(self, policy: Policy, states: Sequence[str], seed: int, n_days: int) -> None:
        super().__init__(policy, states, seed, n_days)
        shares, self.key_year = self._key()
        w, total, self.exact = integer_weights(shares, self.states)
        self.ledger = KeyLedger(w, total, self.rank)

    def step(self, ctx: DayContext, pool: I64) -> Decision:
        assert self.ledger is not None
        placed, received = allocate_by_key(self.ledger, pool, ctx.room)
        return Decision(
            placed=placed, received=received, transferred=_persons(placed), moved_in=received
        )


class Relocation(Rule):
    """Council Decisions (EU) 2015/1523 and 2015/1601: first entry (Dublin III) stays the rule,
    but from ``start`` for ``days`` days, ``relocations`` persons in clear need of protection
    (an ``eligible`` share of the arrivals, an assumption) are relocated from the
    ``beneficiaries`` to the other participating states by the key of Decision (EU) 2015/1601.
    The relocations are spread evenly over the period; a day's unused places carry over."""

    name = "relocation"

    def __init__(self, policy: Policy, states: Sequence[str], seed: int, n_days: int) -> None:
        super().__init__(policy, states, seed, n_days)
        shares, self.key_year = self._key()
        w, total, self.exact = integer_weights(shares, self.states)
        self.ledger = KeyLedger(w, total, self.rank)
        self.beneficiary = np.zeros(len(self.states), dtype=bool)
        for c in self._codes("beneficiaries"):
            self.beneficiary[self.index[c]] = True
        self.total = int(self._param("relocations"))
        start = self._param("start")
        self.start = start if isinstance(start, date) else date.fromisoformat(str(start))
        self.days = int(self._param("days"))
        self.eligible = float(self._param("eligible", 1.0))
        self.relocated = 0

    def quota(self, ctx: DayContext) -> int:
        """Persons that may be relocated today: the even spread up to today, less those done."""
        elapsed = (ctx.date - self.start).days
        if elapsed < 0:
            return 0
        target = self.total * min(elapsed + 1, self.days) // self.days
        return max(0, target - self.relocated)

    def step(self, ctx: DayContext, pool: I64) -> Decision:
        assert self.ledger is not None
        budget = self.quota(ctx)
        moved = np.zeros_like(pool)
        received = np.zeros(len(self.states), dtype=np.int64)
        if budget > 0:
            candidates = np.where(self.beneficiary[:, None, None], pool, 0)
            if self.eligible < 1.0:
                candidates = ctx.rng.binomial(candidates, self.eligible).astype(np.int64)
            chosen = select_budget(candidates, budget)
            moved, received = allocate_by_key(self.ledger, chosen, ctx.room)
            self.relocated += int(received.sum())
        moved_in = received.copy()
        received += self._first_entry(pool - moved)
        return Decision(
            placed=pool.copy(), received=received, transferred=_persons(moved), moved_in=moved_in
        )


class SolidarityPool(Relocation):
    """Regulation (EU) 2024/1351, Arts 56–66: first entry stays the rule; each year a
    solidarity pool of ``relocations_per_year`` relocations (Art. 12(2): at least 30,000) is
    shared among the contributing states (all but the beneficiaries) by the reference key of
    Art. 66 (50% population, 50% total GDP). A state in ``opt_out`` pays a financial
    contribution instead, ``eur_per_relocation`` (EUR 20,000, Art. 64) for each relocation of
    its share; the pledged relocations are carried out from the beneficiaries, shared among the
    relocating states in proportion to the key."""

    name = "solidarity_pool"

    def __init__(self, policy: Policy, states: Sequence[str], seed: int, n_days: int) -> None:
        Rule.__init__(self, policy, states, seed, n_days)
        self.beneficiary = np.zeros(len(self.states), dtype=bool)
        for c in self._codes("beneficiaries"):
            self.beneficiary[self.index[c]] = True
        opt_out = set(self._codes("opt_out"))
        participants = str(self._param("participants", "EU28"))
        shares, self.key_year = self._key(participants)
        contributors = {
            c: s
            for c, s in shares.items()
            if c in self.index and not self.beneficiary[self.index[c]]
        }
        whole = sum(contributors.values(), Fraction(0))
        self.contribution_share = {c: s / whole for c, s in contributors.items()}
        pledged = {c: s for c, s in self.contribution_share.items() if c not in opt_out}
        self.pledged_fraction = sum(pledged.values(), Fraction(0))
        w, total, self.exact = integer_weights(
            {c: s / self.pledged_fraction for c, s in pledged.items()}, self.states
        )
        self.ledger = KeyLedger(w, total, self.rank)
        self.per_year = int(self._param("relocations_per_year"))
        self.eur = float(self._param("eur_per_relocation"))
        self.opt_out_share = np.array(
            [float(self.contribution_share[c]) if c in opt_out else 0.0 for c in self.states]
        )
        self.relocated = 0
        self.eligible = 1.0

    def quota(self, ctx: DayContext) -> int:
        """The pledged relocations accrued up to today (the pool spread evenly over each
        year), less those done."""
        target = self.pledged_fraction * self.per_year * (ctx.day + 1) / 365
        return max(0, int(target) - self.relocated)

    def step(self, ctx: DayContext, pool: I64) -> Decision:
        decision = super().step(ctx, pool)
        decision.payments = self.opt_out_share * self.per_year * self.eur / 365.0
        return decision


class CorrectiveAllocation(Rule):
    """Dublin IV proposal (COM(2016) 270): first entry, but while a state is responsible for
    more than ``trigger`` (150%) of its reference number — its key share of all applications
    in the last ``window_days`` — the applicants it would be responsible for are allocated to
    the states below 100% of their reference number, in proportion to the key (largest
    deficit first, whole families). Where reception capacity is short, they wait."""

    name = "corrective"

    def __init__(self, policy: Policy, states: Sequence[str], seed: int, n_days: int) -> None:
        super().__init__(policy, states, seed, n_days)
        shares, self.key_year = self._key()
        self.weights, self.total_weight, self.exact = integer_weights(shares, self.states)
        trigger = Fraction(str(self._param("trigger")))
        self.trigger = (trigger.numerator, trigger.denominator)
        self.window = int(self._param("window_days"))
        self.history = np.zeros((self.window, len(self.states)), dtype=np.int64)
        self.responsible = np.zeros(len(self.states), dtype=np.int64)
        self.corrected = 0
        self.corrective_received = np.zeros(len(self.states), dtype=np.int64)
        self.largest = 0

    def step(self, ctx: DayContext, pool: I64) -> Decision:
        w, big_w = self.weights, self.total_weight
        resp = self.responsible
        total = int(resp.sum())
        num, den = self.trigger
        over = resp * big_w * den > num * w * total
        under = (resp * big_w < w * total) & (w > 0)
        if total == 0:
            under = w > 0
        moved = np.zeros_like(pool)
        received = np.zeros(len(self.states), dtype=np.int64)
        moved_in = received.copy()
        if over.any() and under.any():
            candidates = np.where(over[:, None, None], pool, 0)
            # in proportion to the key among the states below 100%: the corrective
            # allocations so far are the ledger, each family to the largest deficit
            level = self.corrective_received
            running = int(level.sum())
            room = ctx.room
            for t in range(pool.shape[2]):
                for k in range(pool.shape[1] - 1, -1, -1):
                    column = candidates[:, k, t]
                    count = int(column.sum())
                    if not count:
                        continue
                    size = k + 1
                    limit = np.where(under, count, 0)
                    if room is not None:
                        limit = np.minimum(limit, np.maximum(room, 0) // size)
                    gap = w * (running + size * count) - level * big_w
                    n = waterfill(gap, size * big_w, count, limit.astype(np.int64), self.rank)
                    got = int(n.sum())
                    if not got:
                        continue
                    level += n * size
                    running += got * size
                    received += n * size
                    if room is not None:
                        room -= n * size
                    moved[:, k, t] = take_proportional(column, got)
                    self.largest = max(self.largest, size)
            self.corrected += int(received.sum())
        moved_in = received.copy()
        # cases of states above the trigger that could not be transferred wait
        waiting = np.where(over[:, None, None], pool - moved, 0) if under.any() else 0 * pool
        staying = pool - moved - waiting
        received += self._first_entry(staying)
        slot = ctx.day % self.window
        self.responsible -= self.history[slot]
        self.history[slot] = received
        self.responsible += received
        return Decision(
            placed=pool - waiting,
            received=received,
            transferred=_persons(moved),
            moved_in=moved_in,
        )


#: The rules by name (``rule:`` in rules/policies.yaml).
RULES: dict[str, type[Rule]] = {
    FirstEntry.name: FirstEntry,
    KeyAllocation.name: KeyAllocation,
    Relocation.name: Relocation,
    SolidarityPool.name: SolidarityPool,
    CorrectiveAllocation.name: CorrectiveAllocation,
}
