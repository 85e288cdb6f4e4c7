"""Benchmark of the policy simulator (issue 6); prints a table (docs/benchmarks.md).

(a) the full 2015–2016 replay: 2,464,095 persons, 731 daily steps, all six policies
    (flows, dynamics and the metrics of the JSON contract) — target ≤ 60 s on 2 cores;
(b) a sweep of N scenarios (each one policy's full replay with random parameters) on a local
    Dask cluster with 1 and with 2 single-threaded workers (BLAS pinned to one thread) —
    target: 2 workers ≥ 1.6× faster.

Usage: .venv/bin/python benchmarks/bench_simulation.py [--scenarios 200] [--only a|b]
"""

from __future__ import annotations

import argparse
import os
import time

for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_k] = "1"

from fairshare.simulation import DEFAULT_POLICIES, simulate  # noqa: E402
from fairshare.simulation.sweep import draw_scenarios, run_sweep  # noqa: E402


def bench_replay() -> tuple[float, int]:
    start = time.perf_counter()
    result = simulate("2015-2016", DEFAULT_POLICIES, seed=1)
    summary = result.summary()
    elapsed = time.perf_counter() - start
    assert summary["policies"]["population"]["metrics"]["within_M_every_step"] is True
    return elapsed, int(summary["persons"])


def bench_sweep(n: int, workers: int) -> float:
    scenarios = draw_scenarios(n, list(DEFAULT_POLICIES[1:]), seed=7)
    start = time.perf_counter()
    results = run_sweep(scenarios, workers=workers)
    elapsed = time.perf_counter() - start
    assert len(results) == n
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", type=int, default=200)
    parser.add_argument("--only", choices=["a", "b"], default=None)
    args = parser.parse_args()
    rows = []
    if args.only in (None, "a"):
        best = min(bench_replay()[0] for _ in range(2))
        rows.append(
            ("(a) full replay, 2,464,095 persons, 731 days, 6 policies", "≤ 60 s", f"{best:.1f} s")
        )
    if args.only in (None, "b"):
        one = bench_sweep(args.scenarios, 1)
        two = bench_sweep(args.scenarios, 2)
        rows.append((f"(b) sweep, {args.scenarios} scenarios, 1 worker", "", f"{one:.1f} s"))
        rows.append((f"(b) sweep, {args.scenarios} scenarios, 2 workers", "", f"{two:.1f} s"))
        rows.append(("(b) speed-up 2 workers vs 1", "≥ 1.6×", f"{one / two:.2f}×"))
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'target':>8}  {'measured':>10}")
    for name, target, value in rows:
        print(f"{name:<{width}}  {target:>8}  {value:>10}")


if __name__ == "__main__":
    main()
