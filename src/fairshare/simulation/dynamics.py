"""Daily dynamics: registration at the entry states, screening, allocation, transfer.

Each day of a scenario, for one policy:

1. the day's arrivals (cohorts of cases by entry state, family size and tier; see
   :mod:`fairshare.simulation.flows`) join the **registration** queue of their entry state;
   an entry state registers at most ``registration_factor`` × its mean daily arrivals (persons
   per day; an assumption, ``None`` = no limit), the most urgent tier first, then in order of
   arrival;
2. **screening** takes ``screening_days`` (default 7: the time limit of the Screening
   Regulation (EU) 2024/1356);
3. the policy's rule decides the responsible state of the screened cases (the allocation
   batch of the day, :mod:`fairshare.simulation.policies`); cases that cannot be placed yet
   (reception capacity) wait in the pool of their entry state;
4. persons allocated away from their entry state are **transferred** after
   ``transfer_days`` (an assumption; Dublin III, Art. 29(1), allows up to six months);
5. a share ``secondary_movement`` of the persons made the responsibility of a state other than
   the one they applied in move on to that state (an assumption; default 0).

Reception capacity (``reception_factor``): each state can take in at most that multiple of its
population-key share of the mean daily arrivals by transfer, per day (``None`` = no limit).

The ``observed`` policy is the record itself: persons are where they applied, on the day
(spread evenly within each month) they applied.

All of it is numpy over cohorts (days × entry states × sizes × tiers); nothing loops over
persons, so the 2015–2016 replay (2.5 million persons, 731 days) takes seconds per policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from fairshare.errors import InputError
from fairshare.keys import compute_key
from fairshare.simulation.cohorts import I64, integer_weights
from fairshare.simulation.flows import MAX_FAMILY, Flows
from fairshare.simulation.policies import RULES, DayContext, Policy, Rule

__all__ = ["DynamicsParams", "PolicyRun", "run_policy"]

F64 = npt.NDArray[np.float64]
SIZES = np.arange(1, MAX_FAMILY + 1, dtype=np.int64)
UNLIMITED = np.iinfo(np.int64).max // 4


@dataclass(frozen=True)
class DynamicsParams:
    """The parameters of the daily dynamics. Defaults are ASSUMPTIONS (docs/simulation.md),
    except ``screening_days`` (Regulation (EU) 2024/1356: screening within 7 days)."""

    registration_factor: float | None = 1.5
    screening_days: int = 7
    transfer_days: int = 30
    reception_factor: float | None = None
    secondary_movement: float = 0.0

    def with_(self, **changes: object) -> DynamicsParams:
        """A copy with some parameters changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def check(self) -> None:
        """Raise :class:`InputError` for a parameter out of range."""
        for name in ("registration_factor", "reception_factor"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"{name}: a positive number or none, got {value}")
        for name in ("screening_days", "transfer_days"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}: 0 or more days, got {getattr(self, name)}")
        if not 0 <= self.secondary_movement <= 1:
            raise InputError(f"secondary_movement: a share 0..1, got {self.secondary_movement}")


@dataclass
class PolicyRun:
    """What one policy did, day by day.

    ``received``: int64[days, states] persons made the responsibility of each state per day;
    ``backlog``: int64[days, states] persons waiting in each entry state at the end of the
    day (registration, screening, the allocation pool, transfers under way);
    ``arrived``/``allocated``/``transferred``: int64[days, entry states, tiers] persons (for
    the waiting times); ``present``: float64[states] persons at the end after secondary
    movements; ``payments``: float64[states] EUR paid instead of relocating; ``deviation``:
    float64[days] the largest |received − fair share| of the rule's ledger after each day
    (NaN without a ledger) and ``largest``: int64[days] M after each day; ``within_m``: whether
    every state was within M of its fair share (exactly) after every day; ``families_split``:
    families whose members were given different states (0 by construction; counted).
    """

    policy: Policy
    states: tuple[str, ...]
    params: DynamicsParams
    received: I64
    backlog: I64
    arrived: I64
    allocated: I64
    transferred: I64
    present: F64
    payments: F64
    deviation: F64
    largest: I64
    within_m: bool | None
    families_split: int = 0
    capacity_bound: bool = False
    extra: dict[str, float] = field(default_factory=dict)


def _reception_room(flows: Flows, params: DynamicsParams) -> I64 | None:
    if params.reception_factor is None:
        return None
    result = compute_key("population", year=2015, participants=list(flows.states))
    w, total, _ = integer_weights(result.shares, flows.states)
    mean = flows.persons / len(flows.days)
    return np.ceil(params.reception_factor * mean * w / total).astype(np.int64)


def run_policy(
    flows: Flows,
    policy: Policy,
    params: DynamicsParams | None = None,
    *,
    seed: int = 0,
    on_day: Callable[[int], None] | None = None,
) -> PolicyRun:
    """Replay ``flows`` under ``policy`` at daily steps; the same inputs and seed give the same
    result."""
    p = params or DynamicsParams()
    p.check()
    n_days, n_states = flows.cases.shape[0], flows.cases.shape[1]
    sizes = SIZES
    arrived = np.einsum("tekr,k->ter", flows.cases, sizes).astype(np.int64)
    if policy.rule == "observed":
        received = flows.applied.copy()
        zeros = np.zeros((n_days, n_states, 3), dtype=np.int64)
        # observed: persons are where they applied, on the day they applied; nobody waits
        if on_day is not None:
            on_day(n_days)
        return PolicyRun(
            policy=policy,
            states=flows.states,
            params=p,
            received=received,
            backlog=np.zeros((n_days, n_states), dtype=np.int64),
            arrived=arrived,
            allocated=arrived.copy(),
            transferred=zeros,
            present=received.sum(axis=0).astype(np.float64),
            payments=np.zeros(n_states),
            deviation=np.full(n_days, np.nan),
            largest=np.zeros(n_days, dtype=np.int64),
            within_m=None,
        )
    rule_class = RULES[policy.rule]
    rule: Rule = rule_class(policy, flows.states, seed, n_days)
    rng = np.random.default_rng([seed, 6])
    # registration capacity per entry state (persons per day)
    if p.registration_factor is None:
        reg_cap = np.full(n_states, UNLIMITED, dtype=np.int64)
    else:
        mean = arrived.sum(axis=(0, 2)) / n_days
        reg_cap = np.maximum(1, np.ceil(p.registration_factor * mean)).astype(np.int64)
    room0 = _reception_room(flows, p)
    queue = np.zeros((n_states, MAX_FAMILY, 3), dtype=np.int64)
    ring_len = p.screening_days + 1
    screening = np.zeros((ring_len, n_states, MAX_FAMILY, 3), dtype=np.int64)
    pool = np.zeros_like(queue)
    t_len = max(1, p.transfer_days)
    in_transfer = np.zeros((t_len, n_states), dtype=np.int64)
    received = np.zeros((n_days, n_states), dtype=np.int64)
    backlog = np.zeros((n_days, n_states), dtype=np.int64)
    allocated = np.zeros((n_days, n_states, 3), dtype=np.int64)
    transferred = np.zeros((n_days, n_states, 3), dtype=np.int64)
    moved_in = np.zeros((n_days, n_states), dtype=np.int64)
    payments = np.zeros(n_states)
    deviation = np.full(n_days, np.nan)
    largest = np.zeros(n_days, dtype=np.int64)
    within = True
    capacity_bound = False
    split = 0
    size3 = sizes[None, :, None]
    for t in range(n_days):
        # 1. registration: most urgent tier first, whole families
        queue += flows.cases[t]
        cap = reg_cap.copy()
        registered = np.zeros_like(queue)
        for r in range(3):
            waiting = queue[:, :, r]
            persons = waiting @ sizes
            full = persons <= cap
            take = np.where(
                full[:, None], waiting, waiting * cap[:, None] // np.maximum(persons, 1)[:, None]
            )
            registered[:, :, r] = take
            cap -= take @ sizes
        queue -= registered
        # 2. screening
        screening[t % ring_len] = registered
        ready_slot = (t - p.screening_days) % ring_len
        ready = screening[ready_slot].copy()
        screening[ready_slot] = 0
        # 3. the rule
        pool += ready
        room = None if room0 is None else room0.copy()
        decision = rule.step(DayContext(t, flows.days[t], room, rng), pool)
        placed = decision.placed
        if (placed < 0).any() or (placed > pool).any():
            raise AssertionError(f"{policy.name}: the rule placed cases that were not waiting")
        pool -= placed
        placed_persons = np.einsum("ekr,k->er", placed, sizes)
        if int(decision.received.sum()) != int(placed_persons.sum()):
            split += abs(int(decision.received.sum()) - int(placed_persons.sum()))
        received[t] = decision.received
        allocated[t] = placed_persons
        transferred[t] = decision.transferred
        if decision.moved_in is not None:
            moved_in[t] = decision.moved_in
        if decision.payments is not None:
            payments += decision.payments
        if room0 is not None and int(pool.sum()):
            capacity_bound = True
        # 4. transfers under way
        in_transfer[t % t_len] = decision.transferred.sum(axis=1) if p.transfer_days else 0
        # backlog in the entry states
        backlog[t] = (
            (queue * size3).sum(axis=(1, 2))
            + (screening * size3[None]).sum(axis=(0, 2, 3))
            + (pool * size3).sum(axis=(1, 2))
            + in_transfer.sum(axis=0)
        )
        ledger = rule.ledger
        if ledger is not None:
            deviation[t] = float(np.abs(ledger.deviation()).max())
            largest[t] = ledger.largest
            if not ledger.within_m():
                within = False
        if on_day is not None and (t % 30 == 29 or t == n_days - 1):
            on_day(30 if t % 30 == 29 else (t % 30) + 1)
    present = _secondary(flows, received, moved_in, transferred, p.secondary_movement)
    return PolicyRun(
        policy=policy,
        states=flows.states,
        params=p,
        received=received,
        backlog=backlog,
        arrived=arrived,
        allocated=allocated,
        transferred=transferred,
        present=present,
        payments=payments,
        deviation=deviation,
        largest=largest,
        within_m=within if rule.ledger is not None else None,
        families_split=split,
        capacity_bound=capacity_bound,
        extra={
            "relocated": float(getattr(rule, "relocated", 0)),
            "corrected": float(getattr(rule, "corrected", 0)),
        },
    )


def _secondary(flows: Flows, received: I64, moved_in: I64, transferred: I64, share: float) -> F64:
    """Persons present at the end after secondary movements (expected values, floats).

    A ``share`` of the persons who are the responsibility of a state other than the one they
    applied in move on to the state they applied in. Where they applied is known per entry
    state (the flows' entry × application mix): persons who stayed in their entry state apply
    as that state's entrants did; persons who arrived by transfer as the transferred entrants
    did on the whole.
    """
    totals: F64 = received.sum(axis=0).astype(np.float64)
    if share <= 0:
        return totals
    mix = flows.entry_applied.astype(np.float64)
    rows = mix / np.maximum(mix.sum(axis=1, keepdims=True), 1.0)
    by_entry = transferred.sum(axis=(0, 2)).astype(np.float64)
    pooled = by_entry @ rows
    pooled = pooled / pooled.sum() if pooled.sum() > 0 else pooled
    came = moved_in.sum(axis=0).astype(np.float64)
    stayed = totals - came
    present = totals.copy()
    for d in range(totals.size):
        for amount, dist in ((stayed[d], rows[d]), (came[d], pooled)):
            if amount <= 0 or dist.sum() <= 0:
                continue
            away = dist.copy()
            away[d] = 0.0
            leaving = share * amount * away.sum()
            present[d] -= leaving
            if away.sum() > 0:
                present += leaving * away / away.sum()
    return np.asarray(present, dtype=np.float64)


def run_policies(
    flows: Flows,
    policies: Sequence[Policy],
    params: DynamicsParams | None = None,
    *,
    seed: int = 0,
    on_day: Callable[[int], None] | None = None,
) -> list[PolicyRun]:
    """Run several policies on the same flows."""
    return [run_policy(flows, pol, params, seed=seed, on_day=on_day) for pol in policies]
