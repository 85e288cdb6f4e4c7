"""Metrics of a policy run, per state and over time.

* **received**: persons made the responsibility of each state; **per 1,000** inhabitants
  (population on 1 January 2015, Eurostat demo_pjan, bundled);
* **fair share**: the petition's yardstick for every policy — the state's population share of
  all persons received (the population key over the simulated states); **deviation** =
  received − fair share;
* **backlog** at the entry states (persons waiting to be registered, screened, allocated or
  transferred), its peak and its path;
* **waiting days** from arrival until the person is in the responsible state (registration,
  screening, allocation and, when the person is moved, the transfer lead time): median and
  95th percentile, for vulnerable persons (tiers 1–2) and the others, first come first served
  within an entry state and tier;
* **families split** (must be 0); **Gini** of the per-capita load over the states (unweighted)
  and the **max/min ratio** of the per-1,000 figures (``None`` when a state receives nobody).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from fairshare.keys import compute_key
from fairshare.reference import bundled_indicators
from fairshare.simulation.cohorts import I64
from fairshare.simulation.dynamics import PolicyRun

__all__ = ["gini", "policy_metrics", "populations", "waiting_days"]

F64 = npt.NDArray[np.float64]


@cache
def _population(states: tuple[str, ...]) -> tuple[int, ...]:
    table = bundled_indicators()
    return tuple(int(table.get("population", s, 2015).value) for s in states)


def populations(states: Sequence[str]) -> I64:
    """Population on 1 January 2015 per state (bundled Eurostat demo_pjan)."""
    return np.array(_population(tuple(states)), dtype=np.int64)


@cache
def _population_shares(states: tuple[str, ...]) -> tuple[Fraction, ...]:
    shares = compute_key("population", year=2015, participants=list(states)).shares
    return tuple(shares[s] for s in states)


def gini(values: F64) -> float:
    """Gini coefficient of non-negative values (0 = all equal).

    >>> gini(np.array([1.0, 1.0, 1.0])), round(gini(np.array([0.0, 0.0, 3.0])), 4)
    (0.0, 0.6667)
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * x).sum() / (n * x.sum())) - (n + 1) / n)


def waiting_days(run: PolicyRun) -> dict[str, Any]:
    """Waiting days (arrival → in the responsible state) per person, as histograms.

    Returns ``{"vulnerable": int64[days], "other": int64[days], "still_waiting": {...}}``.
    """
    n_days = run.arrived.shape[0]
    lead = run.params.transfer_days
    hist = {
        "vulnerable": np.zeros(n_days + lead + 1, dtype=np.int64),
        "other": np.zeros(n_days + lead + 1, dtype=np.int64),
    }
    still = {"vulnerable": 0, "other": 0}
    for e in range(run.arrived.shape[1]):
        for r in range(3):
            arr = run.arrived[:, e, r]
            if not arr.any():
                continue
            group = "vulnerable" if r < 2 else "other"
            alloc = run.allocated[:, e, r]
            trans = run.transferred[:, e, r]
            c_arr = np.cumsum(arr)
            c_alloc = np.cumsum(alloc)
            n = int(c_alloc[-1])
            still[group] += int(c_arr[-1]) - n
            if n == 0:
                continue
            x = np.arange(n, dtype=np.int64)
            came = np.searchsorted(c_arr, x, side="right")
            day = np.searchsorted(c_alloc, x, side="right")
            before = np.where(day > 0, c_alloc[np.maximum(day - 1, 0)], 0)
            moved = (x - before) >= (alloc[day] - trans[day])
            wait = day - came + lead * moved
            hist[group] += np.bincount(wait, minlength=hist[group].size)[: hist[group].size]
    return {**hist, "still_waiting": still}


def _quantile(hist: I64, q: float) -> float | None:
    total = int(hist.sum())
    if total == 0:
        return None
    c = np.cumsum(hist)
    return float(np.searchsorted(c, q * total, side="left"))


def policy_metrics(run: PolicyRun) -> dict[str, Any]:
    """Per-state totals and overall metrics of one run (JSON-ready; floats rounded to 0.01)."""
    states = run.states
    pop = populations(states)
    shares = _population_shares(tuple(states))
    received = run.received.sum(axis=0)
    total = int(received.sum())
    per_1000 = received * 1000.0 / pop
    out_states: dict[str, dict[str, Any]] = {}
    for i, s in enumerate(states):
        fair = shares[i] * total
        out_states[s] = {
            "received": int(received[i]),
            "per_1000": round(float(per_1000[i]), 3),
            "fair_share": round(float(fair), 2),
            "deviation": round(float(received[i] - fair), 2),
            "percent_of_fair_share": round(float(received[i] / fair * 100), 2) if fair else None,
            "backlog_peak": int(run.backlog[:, i].max()),
            "present_after_secondary_movement": round(float(run.present[i]), 2),
            "payments_eur": round(float(run.payments[i]), 2),
        }
    waits = waiting_days(run)
    both = waits["vulnerable"] + waits["other"]

    def stats(h: I64) -> dict[str, float | None]:
        return {"median": _quantile(h, 0.5), "p95": _quantile(h, 0.95)}

    positive = per_1000[per_1000 > 0]
    ratio = round(float(per_1000.max() / per_1000.min()), 3) if per_1000.min() > 0 else None
    arrived = int(run.arrived.sum())
    metrics: dict[str, Any] = {
        "persons_arrived": arrived,
        "persons_received": total,
        "persons_still_waiting_at_end": arrived - total,
        "persons_transferred": int(run.transferred.sum()),
        "waiting_days": {
            "all": stats(both),
            "vulnerable": stats(waits["vulnerable"]),
            "other": stats(waits["other"]),
        },
        "families_split": int(run.families_split),
        "gini_per_capita": round(gini(per_1000), 4),
        "max_min_ratio": ratio,
        "states_receiving_nobody": int(per_1000.size - positive.size),
        "max_abs_deviation_from_fair_share": round(
            max(abs(v["deviation"]) for v in out_states.values()), 2
        ),
        "backlog_peak_total": int(run.backlog.sum(axis=1).max()),
        "payments_eur_total": round(float(run.payments.sum()), 2),
        "relocated": int(run.extra.get("relocated", 0)),
        "corrective_allocations": int(run.extra.get("corrected", 0)),
        "within_M_every_step": run.within_m,
        "M": int(run.largest.max()) if run.largest.size else 0,
        "capacity_bound": run.capacity_bound,
    }
    return {"states": out_states, "metrics": metrics}


def time_series(run: PolicyRun) -> dict[str, F64]:
    """Daily series: cumulative received per state per 1,000, the Gini of it, backlog total."""
    pop = populations(run.states)
    cumulative = np.cumsum(run.received, axis=0)
    per_1000 = cumulative * 1000.0 / pop[None, :]
    g = np.array([gini(row) for row in per_1000])
    return {
        "cumulative": cumulative.astype(np.float64),
        "per_1000": per_1000,
        "gini": g,
        "backlog": run.backlog.sum(axis=1).astype(np.float64),
        "backlog_by_state": run.backlog.astype(np.float64),
    }
