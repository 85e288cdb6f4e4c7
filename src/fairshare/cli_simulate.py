"""``fairshare simulate`` and ``fairshare sweep``: the policy simulator on the command line.

An adapter (Typer, Rich) around :mod:`fairshare.simulation`; the lead registers the commands
with ``register(app)`` in ``fairshare.cli``. Progress goes to standard error, results to
standard output (``--format json``: the stable JSON contract of docs/simulation.md).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fairshare.errors import InputError
from fairshare.simulation import DynamicsParams, FlowAssumptions, simulate
from fairshare.simulation.flows import SCENARIOS, parse_entry_shares
from fairshare.simulation.policies import builtin_policies
from fairshare.simulation.sweep import draw_scenarios, run_sweep, summarise

__all__ = ["register", "simulate_command", "sweep_command"]


class SimFormat(StrEnum):
    """Output formats of the simulator."""

    table = "table"
    json = "json"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _policies(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    known = builtin_policies()
    for name in names:
        if name not in known:
            raise InputError(f"--policy: unknown policy {name!r}; use {', '.join(known)}")
    if not names:
        raise InputError("--policy: give at least one policy, e.g. observed,population")
    return names


def _none_or_float(value: str, option: str) -> float | None:
    if value.lower() in ("none", "unlimited", ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{option}: a number or 'none', got {value!r}") from None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)


def simulate_command(
    scenario: Annotated[str, typer.Option(help=f"Scenario: {', '.join(SCENARIOS)}.")] = "2015-2016",
    policy: Annotated[
        str, typer.Option(help="Policies, comma-separated.")
    ] = "observed,dublin,population,eu2015,pact2024,dublin-iv",
    report: Annotated[
        Path | None, typer.Option(help="Write the self-contained HTML report here.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write tables (CSV, Parquet), charts (PNG, HTML) and the report here."),
    ] = None,
    fmt: Annotated[SimFormat, typer.Option("--format", help="Output format.")] = SimFormat.table,
    seed: Annotated[int, typer.Option(help="Seed of the drawn assumptions.")] = 0,
    registration_factor: Annotated[
        str, typer.Option(help="Registration capacity × mean daily arrivals, or 'none'.")
    ] = "1.5",
    screening_days: Annotated[int, typer.Option(help="Screening lead time (days).")] = 7,
    transfer_days: Annotated[int, typer.Option(help="Transfer lead time (days).")] = 30,
    reception_factor: Annotated[
        str, typer.Option(help="Daily reception capacity × key share of mean arrivals, or 'none'.")
    ] = "none",
    secondary_movement: Annotated[
        float, typer.Option(help="Share moving on to the state they applied in.")
    ] = 0.0,
    entry_file: Annotated[
        Path | None, typer.Option(help="CSV entry_state,share replacing the sea-arrival shares.")
    ] = None,
) -> None:
    """Replay the real flows of SCENARIO under each policy and compare them."""
    names = _policies(policy)
    if scenario not in SCENARIOS:
        raise InputError(f"--scenario: use one of {', '.join(SCENARIOS)}, got {scenario!r}")
    assumptions = FlowAssumptions()
    if entry_file is not None:
        try:
            text = entry_file.read_text("utf-8")
        except OSError as exc:
            raise InputError(f"{entry_file}: cannot read it ({exc.strerror})") from None
        assumptions = assumptions.with_(entry_shares=parse_entry_shares(text, str(entry_file)))
    params = DynamicsParams(
        registration_factor=_none_or_float(registration_factor, "--registration-factor"),
        screening_days=screening_days,
        transfer_days=transfer_days,
        reception_factor=_none_or_float(reception_factor, "--reception-factor"),
        secondary_movement=secondary_movement,
    )
    params.check()
    n_days = {"2015-2016": 731, "2015": 365, "2016": 366}.get(scenario, 731)
    with _progress() as bar:
        task = bar.add_task("simulating", total=n_days * len(names))
        result = simulate(
            scenario,
            names,
            params,
            assumptions=assumptions,
            seed=seed,
            on_progress=lambda n: bar.advance(task, n),
        )
        if report is not None or out is not None:
            from fairshare.simulation import report as reporting

            bar.update(task, description="writing the report")
            if out is not None:
                reporting.write_outputs(result, out)
            if report is not None:
                _write(report, reporting.report_html(result))
    summary = result.summary()
    if fmt is SimFormat.json:
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    console = Console()
    table = Table(title=f"{scenario}: {summary['persons']:,} persons, per 1,000 inhabitants")
    table.add_column("State")
    for name in names:
        table.add_column(name, justify="right")
    for state in result.flows.states:
        table.add_row(
            state, *(f"{summary['policies'][n]['states'][state]['per_1000']:.2f}" for n in names)
        )
    table.add_section()
    table.add_row(
        "Gini", *(f"{summary['policies'][n]['metrics']['gini_per_capita']:.3f}" for n in names)
    )
    console.print(table)


def sweep_command(
    scenarios: Annotated[int, typer.Option(help="Number of scenarios.")] = 200,
    policy: Annotated[
        str, typer.Option(help="Policies, comma-separated; scenarios cycle through them.")
    ] = "population,dublin,eu2015,pact2024,dublin-iv",
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a Dask scheduler (tcp://host:port).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Workers of the local Dask cluster.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the parameter draws.")] = 0,
    period: Annotated[str, typer.Option("--scenario", help="The flows replayed.")] = "2015-2016",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the JSON here, too.")
    ] = None,
    fmt: Annotated[SimFormat, typer.Option("--format", help="Output format.")] = SimFormat.table,
) -> None:
    """Monte-Carlo sweep: each scenario one policy's full replay with random parameters."""
    names = _policies(policy)
    if period not in SCENARIOS:
        raise InputError(f"--scenario: use one of {', '.join(SCENARIOS)}, got {period!r}")
    drawn = draw_scenarios(scenarios, names, seed=seed)
    with _progress() as bar:
        task = bar.add_task("sweeping", total=len(drawn))
        results = run_sweep(
            drawn,
            scheduler=scheduler,
            workers=workers,
            period=period,
            on_done=lambda n: bar.advance(task, n),
        )
    summary = summarise(results)
    payload: dict[str, object] = {"scenarios": len(results), "seed": seed, "summary": summary}
    text = orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is not None:
        _write(output, orjson.dumps({**payload, "runs": results}).decode() + "\n")
    if fmt is SimFormat.json:
        sys.stdout.write(text)
        return
    console = Console()
    table = Table(title=f"{len(results)} scenarios: mean [95% CI of the mean]")
    table.add_column("metric")
    for name in summary:
        table.add_column(name, justify="right")
    metrics = next(iter(summary.values()))
    for metric in metrics:
        cells = []
        for name in summary:
            v = summary[name][metric]
            cells.append(
                f"{v['mean']:,.3g} [{v['ci95'][0]:,.3g}, {v['ci95'][1]:,.3g}]" if v["n"] else "–"
            )
        table.add_row(metric, *cells)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``sweep`` to the ``fairshare`` command line."""
    app.command("simulate")(simulate_command)
    app.command("sweep")(sweep_command)
