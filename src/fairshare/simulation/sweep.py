"""Monte-Carlo and parameter sweeps of the simulator on Dask.

A **scenario** is one policy's full replay with parameters drawn at random (seeded) from the
ranges of :class:`SweepRanges`, and its own seed for the flows (family composition, tiers,
entry states). The scenarios run as Dask tasks — on a local cluster by default
(``workers`` processes, one thread each, BLAS pinned to one thread), or on an existing cluster
given by its scheduler address. Each metric is reported with its mean, a 95% confidence
interval of the mean (normal approximation, mean ± 1.96·s/√n) and the 2.5–97.5 percentile
range of the outcomes.

Dask (``dask[distributed]``) is imported only when a sweep runs (the ``sim`` extra).
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fairshare.errors import InputError
from fairshare.simulation.dynamics import DynamicsParams, run_policy
from fairshare.simulation.flows import DEFAULT_FLOW_ASSUMPTIONS, build_flows
from fairshare.simulation.metrics import policy_metrics
from fairshare.simulation.policies import load_policy

__all__ = ["SweepRanges", "draw_scenarios", "run_scenario", "run_sweep", "summarise"]

#: Environment that pins BLAS and OpenMP to one thread (one process per core).
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}

#: The scalar metrics a sweep summarises (paths into ``policy_metrics()['metrics']``).
SWEEP_METRICS: dict[str, tuple[str, ...]] = {
    "gini_per_capita": ("gini_per_capita",),
    "max_abs_deviation_from_fair_share": ("max_abs_deviation_from_fair_share",),
    "backlog_peak_total": ("backlog_peak_total",),
    "persons_transferred": ("persons_transferred",),
    "persons_still_waiting_at_end": ("persons_still_waiting_at_end",),
    "waiting_median_vulnerable": ("waiting_days", "vulnerable", "median"),
    "waiting_p95_vulnerable": ("waiting_days", "vulnerable", "p95"),
    "waiting_median_other": ("waiting_days", "other", "median"),
    "waiting_p95_other": ("waiting_days", "other", "p95"),
    "families_split": ("families_split",),
}


@dataclass(frozen=True)
class SweepRanges:
    """Uniform ranges the parameters are drawn from (ASSUMPTIONS to explore, not data)."""

    registration_factor: tuple[float, float] = (1.0, 3.0)
    transfer_days: tuple[int, int] = (7, 60)
    reception_factor: tuple[float, float] = (1.5, 4.0)
    secondary_movement: tuple[float, float] = (0.0, 0.3)
    urgent: tuple[float, float] = (0.01, 0.05)


def draw_scenarios(
    n: int, policies: Sequence[str], *, seed: int = 0, ranges: SweepRanges | None = None
) -> list[dict[str, Any]]:
    """``n`` scenarios, cycling through ``policies``, with parameters drawn from ``ranges``."""
    if n < 1:
        raise InputError(f"--scenarios must be at least 1, got {n}")
    if not policies:
        raise InputError("give at least one policy")
    for name in policies:
        load_policy(name)
    r = ranges or SweepRanges()
    rng = np.random.default_rng([seed, 61])
    out = []
    for i in range(n):
        out.append(
            {
                "index": i,
                "policy": policies[i % len(policies)],
                "seed": int(rng.integers(0, 2**31)),
                "registration_factor": round(float(rng.uniform(*r.registration_factor)), 4),
                "transfer_days": int(rng.integers(r.transfer_days[0], r.transfer_days[1] + 1)),
                "reception_factor": round(float(rng.uniform(*r.reception_factor)), 4),
                "secondary_movement": round(float(rng.uniform(*r.secondary_movement)), 4),
                "urgent": round(float(rng.uniform(*r.urgent)), 4),
            }
        )
    return out


def run_scenario(scenario: dict[str, Any], period: str = "2015-2016") -> dict[str, Any]:
    """Run one scenario; returns its parameters and its scalar metrics."""
    for k, v in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(k, v)
    flows = build_flows(
        period,
        assumptions=DEFAULT_FLOW_ASSUMPTIONS.with_(urgent=scenario["urgent"]),
        seed=scenario["seed"],
    )
    params = DynamicsParams(
        registration_factor=scenario["registration_factor"],
        transfer_days=scenario["transfer_days"],
        reception_factor=scenario["reception_factor"],
        secondary_movement=scenario["secondary_movement"],
    )
    run = run_policy(flows, load_policy(scenario["policy"]), params, seed=scenario["seed"])
    metrics = policy_metrics(run)["metrics"]
    values: dict[str, float | None] = {}
    for name, path in SWEEP_METRICS.items():
        value: Any = metrics
        for part in path:
            value = value[part]
        values[name] = None if value is None else float(value)
    return {**scenario, "metrics": values}


def summarise(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per policy and metric: n, mean, 95% CI of the mean, 2.5/97.5 percentiles."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for policy in dict.fromkeys(r["policy"] for r in results):
        rows = [r for r in results if r["policy"] == policy]
        out[policy] = {}
        for name in SWEEP_METRICS:
            xs = np.array(
                [r["metrics"][name] for r in rows if r["metrics"][name] is not None], dtype=float
            )
            if xs.size == 0:
                out[policy][name] = {"n": 0}
                continue
            mean = float(xs.mean())
            sd = float(xs.std(ddof=1)) if xs.size > 1 else 0.0
            half = 1.96 * sd / math.sqrt(xs.size)
            out[policy][name] = {
                "n": int(xs.size),
                "mean": round(mean, 4),
                "ci95": [round(mean - half, 4), round(mean + half, 4)],
                "p2_5": round(float(np.percentile(xs, 2.5)), 4),
                "p97_5": round(float(np.percentile(xs, 97.5)), 4),
            }
    return out


def run_sweep(
    scenarios: Sequence[dict[str, Any]],
    *,
    scheduler: str | None = None,
    workers: int = 2,
    period: str = "2015-2016",
    on_done: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the scenarios on Dask (a local cluster of ``workers`` single-threaded processes,
    or the cluster at ``scheduler``); results in scenario order."""
    try:
        distributed: Any = importlib.import_module("dask.distributed")
    except ImportError:
        raise InputError(
            "sweeps need Dask: pip install 'dask[distributed]' (the fairshare 'sim' extra)"
        ) from None
    for k, v in SINGLE_THREAD_ENV.items():
        os.environ[k] = v
    cluster = None
    if scheduler is None:
        if workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=50,
        )
        client = distributed.Client(cluster)
    else:
        client = distributed.Client(scheduler)
    try:
        futures = client.map(run_scenario, list(scenarios), period=period, pure=False)
        results: list[dict[str, Any] | None] = [None] * len(futures)
        position = {f.key: i for i, f in enumerate(futures)}
        for future in distributed.as_completed(futures):
            results[position[future.key]] = future.result()
            if on_done is not None:
                on_done(1)
        return [r for r in results if r is not None]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def ranges_dict(ranges: SweepRanges) -> dict[str, Any]:
    """The ranges as JSON-ready data."""
    return {k: list(v) for k, v in asdict(ranges).items()}
