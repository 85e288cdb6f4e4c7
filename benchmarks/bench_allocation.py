"""Allocation benchmark (issue 3, "Speed"): the engine against the issue's targets and two MIPs.

Run:  .venv/bin/python benchmarks/bench_allocation.py            (the full run, ~15 minutes)
      .venv/bin/python benchmarks/bench_allocation.py --quick    (a smoke run, ~2 minutes)

Instances (synthetic, seeded: :mod:`fairshare.synthetic`; its mixes are assumptions):

(a) 10,000 cases (~25,000 persons) × 28 states with all constraints (services, family links,
    linked cases, exclusions, preferences, scores): validation (parse) time, then
    ``fairshare.allocate.allocate`` (screening, columns, solve, reasons) and, inside it, the
    time of ``fairshare.engine.solve_columns``; then ``solve_columns`` alone on the same columns.
(b) 100,000 cases × 28 states end to end through the CLI in a subprocess:
    ``fairshare allocate INPUT.json --format json -o OUT.json`` (wall time: start-up, reading,
    validation, solve, reasons, writing), for three shapes of batch (``CLI_SHAPES``: the
    default mix, a vulnerable and scarce one, and one scored on every state), each run
    ``--repeats`` times (min, median, max: the machine's speed varies between runs).
(c) 1,000,000 cases × 1,000 regions through ``solve_columns`` from
    ``fairshare.synthetic.synthetic_columns``, in a subprocess of its own so that its peak
    resident set size (``ru_maxrss``: generation and solve together) is its own.
(d) instance (a) as a plain binary MIP (``tests/exact_mip.py``; ``x[c, d]`` per case and allowed
    destination, the same hard constraints) with the lexicographic persons objective folded
    into weights: ``W1·tier1 + W2·tier2 + total`` persons, ``W2 = P + 1``, ``W1 = (P + 1)²``
    (``P`` all persons), so the weighted optimum is the lexicographic one. Fairness and
    preferences are left out of the MIP (which only makes it easier for the MIP solvers); the
    comparison is on the persons levels only. Solved by PuLP's bundled CBC (2 threads) and by
    OR-Tools CP-SAT (2 workers), each with a time limit (``--mip-limit``, default 300 s).
    Times count from the start of building each solver's model from the screened cases; the
    time to reach an objective is read from CP-SAT's solution callback and from CBC's log
    ("Integer solution of ... (t seconds)"). fairshare's time is the whole ``allocate`` call
    (screening, solve and reasons, without parsing). The target is 0.1% below the best
    objective any of the three found; "speed-up" is a solver's time to reach the target
    divided by fairshare's (at least the time limit when the solver never reached it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import exact_mip  # noqa: E402  (tests/exact_mip.py: the one copy of the MIP model)
import fairshare.allocate as allocate_module  # noqa: E402
from fairshare.cases import parse_problem_input  # noqa: E402
from fairshare.engine import ColumnarProblem, solve_columns  # noqa: E402
from fairshare.synthetic import synthetic_columns, synthetic_document  # noqa: E402

console = Console(width=160)


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _ratio(value: float) -> str:
    return f"{value:,.0f}×" if value >= 10 else f"{value:.2g}×"


def _mb(kilobytes: float) -> str:
    return f"{kilobytes / 1024:,.0f} MB"


@contextmanager
def _capture_solve() -> Iterator[list[tuple[ColumnarProblem, float]]]:
    """Time ``solve_columns`` inside ``allocate`` and keep the columns it was given."""
    seen: list[tuple[ColumnarProblem, float]] = []
    original: Callable[..., Any] = allocate_module.solve_columns

    def timed(problem: ColumnarProblem, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = original(problem, **kwargs)
        seen.append((problem, time.perf_counter() - start))
        return result

    allocate_module.solve_columns = timed  # type: ignore[assignment]
    try:
        yield seen
    finally:
        allocate_module.solve_columns = original  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------
# (a) the Python API


def bench_api(n_cases: int, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    doc = synthetic_document(n_cases, seed=seed)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    problem = parse_problem_input(doc)
    parsed = time.perf_counter() - start
    with _capture_solve() as seen:
        start = time.perf_counter()
        output = allocate_module.allocate(problem, seed=0).to_dict()
        allocated = time.perf_counter() - start
    columns, inner = seen[-1]
    alone = []
    for _ in range(3):
        start = time.perf_counter()
        result = solve_columns(columns, seed=0)
        alone.append(time.perf_counter() - start)
    return {
        "doc": doc,
        "output": output,
        "cases": n_cases,
        "persons": sum(len(c["members"]) for c in doc["cases"]),
        "generate_s": generated,
        "parse_s": parsed,
        "allocate_s": allocated,
        "solve_in_allocate_s": inner,
        "solve_columns_s": min(alone),
        "gap": float(output["objective"]["gap"]),
        "columns_gap": float(result.gap),
    }


# --------------------------------------------------------------------------------------------
# (b) the CLI


def _cli() -> str:
    local = Path(sys.executable).parent / "fairshare"
    return str(local) if local.exists() else "fairshare"


#: The shapes of instance (b). Each is an ASSUMPTION about a batch, not a statistic:
#: "default" is synthetic_document's own mix; "vulnerable, scarce" more than doubles the
#: vulnerable persons, links and wishes and cuts places and service places; "scored
#: everywhere" gives every case a score for each of the 28 states (as a matching tool such as
#: GeoMatch would) and half of them three ranked preferences.
CLI_SHAPES = ("default", "vulnerable, scarce", "scored everywhere")


def cli_document(shape: str, n_cases: int, seed: int) -> dict[str, Any]:
    """The input document of one shape of instance (b)."""
    import random
    from dataclasses import replace

    from fairshare.synthetic import DEFAULT_ASSUMPTIONS

    if shape == "vulnerable, scarce":
        harsher = replace(
            DEFAULT_ASSUMPTIONS,
            pregnant=0.08,
            disability=0.06,
            serious_illness=0.05,
            mental_disorder=0.06,
            trafficking_victim=0.02,
            violence_survivor=0.03,
            family_link=0.12,
            linked_pair=0.08,
            preferences=0.6,
        )
        return synthetic_document(
            n_cases,
            seed=seed,
            scarcity=0.6,
            service_scarcity=0.5,
            non_participating=2,
            assumptions=harsher,
        )
    doc = synthetic_document(n_cases, seed=seed)
    if shape == "scored everywhere":
        rng = random.Random(seed)
        states = [d["id"] for d in doc["destinations"]]
        for case in doc["cases"]:
            case["scores"] = {s: round(rng.random(), 3) for s in states}
            if rng.random() < 0.5:
                case["preferences"] = rng.sample(states, 3)
    return doc


def bench_cli(n_cases: int, seed: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for shape in CLI_SHAPES:
        doc = cli_document(shape, n_cases, seed)
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "input.json"
            target = Path(tmp) / "output.json"
            source.write_text(json.dumps(doc), "utf-8")
            command = [_cli(), "allocate", str(source), "--format", "json", "-o", str(target)]
            walls = []
            done = None
            for _ in range(repeats):
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                walls.append(time.perf_counter() - start)
                if done.returncode:
                    break
            assert done is not None
            out = json.loads(target.read_text("utf-8")) if target.exists() else None
            rows.append(
                {
                    "shape": shape,
                    "cases": n_cases,
                    "persons": sum(len(c["members"]) for c in doc["cases"]),
                    "megabytes": source.stat().st_size / 1e6,
                    "walls": walls,
                    "exit": done.returncode,
                    "error": done.stderr.strip()[-300:] if done.returncode else "",
                    "gap": None if out is None else float(out["objective"]["gap"]),
                }
            )
    return rows


# --------------------------------------------------------------------------------------------
# (c) a million cases from columns, in a subprocess


def child_columns(n_cases: int, n_regions: int, seed: int) -> None:
    """Run in the subprocess: generate, solve, print one JSON line with times and peak RSS."""
    start = time.perf_counter()
    problem = synthetic_columns(n_cases, n_regions, seed=seed)
    generated = time.perf_counter() - start
    rss_generated = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = solve_columns(problem, seed=0)
    solved = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "cases": n_cases,
                "regions": len(problem.dest_ids),
                "persons": int(problem.size.sum()),
                "generate_s": generated,
                "solve_s": solved,
                "rss_after_generate_kb": rss_generated,
                "peak_rss_kb": rss,
                "placed": int((result.destination >= 0).sum()),
                "gap": float(result.gap),
            }
        )
    )


def bench_columns(n_cases: int, n_regions: int, seed: int) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-columns",
        f"{n_cases},{n_regions},{seed}",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"cases": n_cases, "regions": n_regions, "error": done.stderr.strip()[-300:]}
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


# --------------------------------------------------------------------------------------------
# (d) the folded MIP


def bench_mip(api: dict[str, Any], limit: float, cbc: bool, cpsat: bool) -> dict[str, Any]:
    data = exact_mip.prepare(api["doc"])
    assignment = exact_mip.assignment_of(api["output"])
    violations = exact_mip.check_assignment(data, assignment)
    levels = exact_mip.levels_of(data, assignment)
    ours = exact_mip.weighted_value(data, levels)
    ours_s = api["allocate_s"]
    runs: list[exact_mip.SolverRun] = []
    if cbc:
        runs.append(exact_mip.solve_cbc_weighted(data, time_limit=limit, threads=2))
    if cpsat:
        runs.append(exact_mip.solve_cpsat_weighted(data, time_limit=limit, workers=2))
    best = max([ours, *(r.best for r in runs if r.best is not None)])
    target = best * (1 - 0.001)
    return {
        "data": data,
        "violations": violations,
        "levels": levels,
        "value": ours,
        "seconds": ours_s,
        "reaches": ours >= target - 1e-9,
        "runs": runs,
        "best": best,
        "target": target,
        "limit": limit,
    }


# --------------------------------------------------------------------------------------------
# Output


def print_api(a: dict[str, Any]) -> None:
    t = Table(title=f"(a) {a['cases']:,} cases ({a['persons']:,} persons) × 28 states, Python API")
    t.add_column("step")
    t.add_column("seconds", justify="right")
    t.add_row("generate the document (synthetic)", _seconds(a["generate_s"]))
    t.add_row("parse_problem_input (validation)", _seconds(a["parse_s"]))
    t.add_row("allocate: screening, columns, solve, reasons", _seconds(a["allocate_s"]))
    t.add_row("  of which solve_columns", _seconds(a["solve_in_allocate_s"]))
    t.add_row("solve_columns alone, best of 3", _seconds(a["solve_columns_s"]))
    t.add_row("reported gap", f"{a['gap']:.4%}")
    console.print(t)


def print_cli(rows: list[dict[str, Any]]) -> None:
    t = Table(
        title=(
            f"(b) {rows[0]['cases']:,} cases × 28 states through the CLI: "
            "fairshare allocate IN.json --format json -o OUT.json (wall seconds, each run a "
            "new process)"
        )
    )
    for name in ("shape", "persons", "input MB", "runs", "min", "median", "max", "exit", "gap"):
        t.add_column(name, justify="left" if name == "shape" else "right")
    for b in rows:
        walls = sorted(b["walls"])
        gap = "—" if b["gap"] is None else f"{b['gap']:.4%}"
        t.add_row(
            b["shape"],
            f"{b['persons']:,}",
            f"{b['megabytes']:.1f}",
            str(len(walls)),
            _seconds(walls[0]),
            _seconds(walls[len(walls) // 2]),
            _seconds(walls[-1]),
            str(b["exit"]),
            gap,
        )
    console.print(t)
    for b in rows:
        if b["error"]:
            console.print(f"[red]error ({b['shape']}):[/red] {b['error']}")


def print_columns(c: dict[str, Any]) -> None:
    t = Table(title=f"(c) {c['cases']:,} cases × {c['regions']:,} regions, columnar API")
    t.add_column("measure")
    t.add_column("value", justify="right")
    if "error" in c:
        t.add_row("error", c["error"])
    else:
        t.add_row("persons", f"{c['persons']:,}")
        t.add_row("generate (synthetic_columns) s", _seconds(c["generate_s"]))
        t.add_row("solve_columns s", _seconds(c["solve_s"]))
        t.add_row("subprocess wall s (start-up, imports, both)", _seconds(c["wall_s"]))
        t.add_row("peak RSS after generation", _mb(c["rss_after_generate_kb"]))
        t.add_row("peak RSS (whole process)", _mb(c["peak_rss_kb"]))
        t.add_row("cases placed", f"{c['placed']:,}")
        t.add_row("reported gap", f"{c['gap']:.4%}")
    console.print(t)


def print_mip(d: dict[str, Any]) -> None:
    data: exact_mip.MipData = d["data"]
    w1, w2 = exact_mip.folded_weights(data)
    t = Table(
        title=(
            f"(d) instance (a) as a folded binary MIP: W1·tier1 + W2·tier2 + total, "
            f"W1 = {w1:,}, W2 = {w2:,}; limit {d['limit']:g} s; target = best − 0.1%"
        )
    )
    for name in ("solver", "status", "tier-1", "tier-2", "total", "objective", "vs best"):
        t.add_column(name, justify="left" if name in ("solver", "status") else "right")
    t.add_column("build s", justify="right")
    t.add_column("to target s", justify="right")
    t.add_column("speed-up", justify="right")
    ours_s = d["seconds"]
    status = "feasible" if not d["violations"] else f"{len(d['violations'])} violations"
    lv = d["levels"]
    t.add_row("fairshare", status, f"{lv.tier1:,}", f"{lv.tier2:,}", f"{lv.total:,}",
              f"{d['value']:,}", f"{d['value'] / d['best']:.6f}", "—",
              _seconds(ours_s if d["reaches"] else None), "1")  # fmt: skip
    for run in d["runs"]:
        reached = run.time_to_reach(d["target"])
        if run.best is None or run.levels is None:
            t.add_row(run.name, run.status, "—", "—", "—", "—", "—", _seconds(run.build_seconds),
                      "not reached", f"> {_ratio(d['limit'] / ours_s)}")  # fmt: skip
            continue
        speed = (
            _ratio(reached / ours_s)
            if reached is not None
            else f"> {_ratio(max(run.total_seconds, d['limit']) / ours_s)}"
        )
        t.add_row(run.name, run.status, f"{run.levels.tier1:,}", f"{run.levels.tier2:,}",
                  f"{run.levels.total:,}", f"{run.best:,}", f"{run.best / d['best']:.6f}",
                  _seconds(run.build_seconds), _seconds(reached) if reached else "not reached",
                  speed)  # fmt: skip
    console.print(t)
    binaries = sum(len(allowed) for allowed in data.allowed)
    console.print(f"  MIP: {binaries:,} binaries over {len(data.case_ids):,} cases")
    for run in d["runs"]:
        if run.history:
            shown = ", ".join(f"{s:.1f}s: {v:,.0f}" for s, v in run.history[-5:])
            console.print(f"  {run.name} improving solutions (last 5): {shown}")
    if d["violations"]:
        console.print(f"[red]fairshare broke constraints:[/red] {d['violations'][:5]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small instances, 10 s MIP limit")
    parser.add_argument(
        "--only", default="a,b,c,d", help="which instances, comma-separated (default a,b,c,d)"
    )
    parser.add_argument("--seed", type=int, default=1, help="instance seed (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="CLI runs per shape in (b)")
    parser.add_argument("--cases-a", type=int, help="cases of (a) and (d) (default 10000)")
    parser.add_argument("--cases-b", type=int, help="cases of (b) (default 100000)")
    parser.add_argument("--cases-c", type=int, help="cases of (c) (default 1000000)")
    parser.add_argument("--regions-c", type=int, help="regions of (c) (default 1000)")
    parser.add_argument("--mip-limit", type=float, help="time limit per MIP solver (default 300)")
    parser.add_argument("--no-cbc", action="store_true", help="skip PuLP/CBC in (d)")
    parser.add_argument("--no-cpsat", action="store_true", help="skip CP-SAT in (d)")
    parser.add_argument("--child-columns", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_columns:
        n, r, seed = (int(v) for v in args.child_columns.split(","))
        child_columns(n, r, seed)
        return
    quick = args.quick
    cases_a = args.cases_a or (2_000 if quick else 10_000)
    cases_b = args.cases_b or (10_000 if quick else 100_000)
    cases_c = args.cases_c or (100_000 if quick else 1_000_000)
    regions_c = args.regions_c or (100 if quick else 1_000)
    limit = args.mip_limit or (10.0 if quick else 300.0)
    only = {part.strip() for part in args.only.split(",")}
    console.print(
        f"fairshare allocation benchmark — {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, seed {args.seed}{' (quick)' if quick else ''}"
    )
    api = None
    if only & {"a", "d"}:
        api = _guarded("(a)", lambda: bench_api(cases_a, args.seed))
        if api is not None and "a" in only:
            print_api(api)
    if "b" in only:
        cli = _guarded("(b)", lambda: bench_cli(cases_b, args.seed, args.repeats))
        if cli is not None:
            print_cli(cli)
    if "c" in only:
        print_columns(bench_columns(cases_c, regions_c, args.seed))
    if "d" in only and api is not None:
        mip = _guarded(
            "(d)", lambda: bench_mip(api, limit, cbc=not args.no_cbc, cpsat=not args.no_cpsat)
        )
        if mip is not None:
            print_mip(mip)


def _guarded(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Run one instance; on an error print it and go on with the others."""
    try:
        return run()
    except Exception as exc:
        console.print(f"[red]{name} failed:[/red] {type(exc).__name__}: {exc}")
        return None


if __name__ == "__main__":
    main()
