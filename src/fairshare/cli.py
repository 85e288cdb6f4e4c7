"""The ``fairshare`` command line: stable JSON for tools, Rich tables for people.

Bad input never produces a traceback: every :class:`~fairshare.errors.InputError` and every
usage error becomes one line on standard error and exit code 2.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import re
import select
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from fairshare import __version__
from fairshare.apportion import Apportionment, apportion, resolve_method
from fairshare.cases import ValidationError
from fairshare.errors import FairshareError, InputError
from fairshare.keys import KeyResult, builtin_keys, compute_key
from fairshare.ledger import BatchResult, Ledger
from fairshare.reference import (
    Indicators,
    bundled_indicators,
    exact_text,
    parse_number,
    states,
)
from fairshare.storage import (
    atomic_write_bytes,
    atomic_write_text,
    load_key,
    load_ledger,
    read_bytes,
    read_destinations,
    read_json,
    read_text,
    save_ledger,
    with_indicator_file,
)

app = typer.Typer(
    name="fairshare",
    help="Fair, explainable sharing of responsibility for people seeking protection in Europe.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"fairshare {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Fair, explainable sharing of responsibility for people seeking protection in Europe."""


class Format(StrEnum):
    """Output formats."""

    table = "table"
    csv = "csv"
    json = "json"


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False, width=max(100, Console().width))


def _dump_json(data: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _indicators(files: Sequence[Path] | None) -> Indicators:
    table = bundled_indicators()
    for path in files or ():
        table = with_indicator_file(table, path)
    return table


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _state_name(code: str) -> str:
    state = states().get(code)
    return state.name if state else code


def _percent(x: Fraction, places: int = 3) -> str:
    return f"{float(x) * 100:.{places}f}"


# --------------------------------------------------------------------------------------------
# shares


def _share_cells(state: str, share: Fraction, fair: Fraction) -> dict[str, Any]:
    """The leading fields of every per-state row: code, name, share and fair share."""
    return {
        "state": state,
        "name": _state_name(state),
        "share": float(share),
        "share_exact": exact_text(share),
        "fair_share": float(fair),
        "fair_share_exact": exact_text(fair),
    }


def _shares_payload(result: KeyResult, alloc: Apportionment, method: str) -> dict[str, Any]:
    rows = []
    for state in result.states:
        share = result.shares[state]
        rows.append(
            {
                **_share_cells(state, share, share * alloc.total),
                "persons": alloc.seats[state],
                "capped_terms": list(result.capped.get(state, ())),
            }
        )
    key = result.key
    return {
        "command": "shares",
        "fairshare_version": __version__,
        "key": key.name,
        "key_definition": key.to_dict(),
        "year": result.year,
        "participants": list(result.states),
        "method": method,
        "total": alloc.total,
        "seed": alloc.seed,
        "ties": [t.to_dict() for t in alloc.ties],
        "rows": rows,
        "components": {
            term: {s: float(v) for s, v in comp.items()} for term, comp in result.components.items()
        },
        "inputs": [d.to_dict() for d in result.inputs],
        "sources": result.sources(),
        "notes": [n for n in (key.participants_note, key.missing_years_note) if n],
    }


def _tie_cells(alloc: Apportionment) -> dict[str, str]:
    """For CSV output: per tied unit, how the recorded lottery treated it."""
    cells: dict[str, str] = {}
    for t in alloc.ties:
        for unit in t.tied:
            outcome = "won" if unit in t.winners else "lost"
            note = (
                f"{outcome} seeded lottery (seed {t.seed}) at seat {t.seat} among "
                f"{' '.join(t.tied)} ({t.rule})"
            )
            cells[unit] = f"{cells[unit]}; {note}" if unit in cells else note
    return cells


def _ties_text(alloc: Apportionment) -> list[str]:
    return [
        f"tie at seat {t.seat} ({t.rule}) among {', '.join(t.tied)} broken by seeded lottery "
        f"(seed {t.seed}): {', '.join(t.winners)}"
        for t in alloc.ties
    ]


@app.command()
def shares(
    total: Annotated[int, typer.Option(help="Number of persons to share out.")],
    key: Annotated[
        str, typer.Option(help="Key name (population, eu2015, eu2015-may, pact2024) or key file.")
    ] = "population",
    year: Annotated[
        int | None, typer.Option(help="Reference year of the inputs (default: the key's own).")
    ] = None,
    states_: Annotated[
        str | None,
        typer.Option(
            "--states",
            help="Participants: a group (EU28, EU27, EU, DUBLIN) and/or codes, comma-separated. "
            "Default: the key's own participants.",
        ),
    ] = None,
    exclude: Annotated[
        str | None, typer.Option(help="Codes to leave out, comma-separated.")
    ] = None,
    method: Annotated[str, typer.Option(help="Apportionment method.")] = "hamilton",
    seed: Annotated[
        int | None, typer.Option(help="Seed of the recorded lottery that breaks exact ties.")
    ] = None,
    indicators: Annotated[
        list[Path] | None,
        typer.Option(help="CSV (state,year,indicator,value) adding or overriding data."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Compute a distribution key and share TOTAL persons by it."""
    if total < 0:
        raise InputError(f"--total must be 0 or more, got {total}")
    canonical = resolve_method(method)
    result = compute_key(
        load_key(key),
        year=year,
        participants=states_,
        exclude=_split(exclude),
        indicators=_indicators(indicators),
    )
    alloc = apportion(result.shares, total, canonical, seed=seed)
    payload = _shares_payload(result, alloc, canonical)
    if fmt is Format.json:
        _dump_json(payload)
        return
    if fmt is Format.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["state", "name", "share", "fair_share", "persons", "share_exact", "tie_draw"]
        )
        ties = _tie_cells(alloc)
        for row in payload["rows"]:
            writer.writerow(
                [
                    row["state"],
                    row["name"],
                    repr(row["share"]),
                    repr(row["fair_share"]),
                    row["persons"],
                    row["share_exact"],
                    ties.get(row["state"], ""),
                ]
            )
        sys.stdout.write(out.getvalue())
        return
    console = _console()
    table = Table(
        title=f"{result.key.title} — {result.year} inputs, {total:,} persons, {canonical}",
        caption=result.key.reference,
    )
    table.add_column("State")
    table.add_column("Name")
    table.add_column("Share %", justify="right")
    table.add_column("Fair share", justify="right")
    table.add_column("Persons", justify="right")
    for row, state in zip(payload["rows"], result.states, strict=True):
        mark = " *" if row["capped_terms"] else ""
        table.add_row(
            state,
            row["name"] + mark,
            _percent(result.shares[state]),
            f"{row['fair_share']:,.2f}",
            f"{row['persons']:,}",
        )
    table.add_section()
    table.add_row("", f"{len(result.states)} states", "100.000", f"{total:,.2f}", f"{total:,}")
    console.print(table)
    if result.capped:
        console.print("* an inverse term was capped for this state (see docs/keys.md)")
    for line in _ties_text(alloc):
        console.print(line)
    console.print("Sources: " + "; ".join(result.sources()))


# --------------------------------------------------------------------------------------------
# keys


@app.command("keys")
def keys_(
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """List the built-in distribution keys with their legal references."""
    defs = builtin_keys()
    if fmt is Format.json:
        _dump_json({"command": "keys", "rows": [d.to_dict() for d in defs.values()]})
        return
    table = Table(title="Built-in distribution keys")
    table.add_column("Key")
    table.add_column("What")
    table.add_column("Default participants")
    table.add_column("Reference")
    for d in defs.values():
        who = d.participants + (f" without {', '.join(d.exclude)}" if d.exclude else "")
        table.add_row(d.name, d.description, who, d.reference)
    _console().print(table)


# --------------------------------------------------------------------------------------------
# apportion


def _read_csv(
    path: Path, required: Sequence[str], optional: Sequence[str] = ()
) -> list[tuple[int, dict[str, str]]]:
    """Read a small CSV input file: (line number, row) pairs, or one InputError.

    Accepts a UTF-8 byte-order mark (spreadsheet exports); rejects directories, missing or
    duplicated or unknown columns, rows with extra fields and line breaks inside values.
    """
    reader = csv.reader(io.StringIO(read_text(path, "file")))
    header = [h.strip() for h in next(reader, [])]
    expected = ",".join(required) + (f"[,{','.join(optional)}]" if optional else "")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must be {expected}"
        )
    if len(set(header)) != len(header):
        raise InputError(f"{path}: a column appears twice in the header; it must be {expected}")
    unknown = [c for c in header if c not in (*required, *optional)]
    if unknown:
        raise InputError(
            f"{path}: unknown column(s) {', '.join(unknown)}; the header must be {expected}"
        )
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[str] = []
    for fields in reader:
        lineno = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) > len(header):
            problems.append(f"line {lineno}: more fields than the header has")
            continue
        if any("\n" in f or "\r" in f for f in fields):
            problems.append(f"line {lineno}: a value contains a line break")
            continue
        padded = [*fields, *[""] * (len(header) - len(fields))]
        rows.append((lineno, {h: f.strip() for h, f in zip(header, padded, strict=True)}))
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems[:20]))
    return rows


def _read_units(path: Path) -> tuple[dict[str, Fraction], dict[str, int], dict[str, int]]:
    weights: dict[str, Fraction] = {}
    minimum: dict[str, int] = {}
    maximum: dict[str, int] = {}
    problems: list[str] = []
    for lineno, row in _read_csv(path, ("unit", "weight"), ("min", "max")):
        unit = row["unit"]
        if not unit:
            problems.append(f"line {lineno}: unit is empty")
            continue
        if unit in weights:
            problems.append(f"line {lineno}: unit '{unit}' appears twice")
            continue
        try:
            weight = parse_number(row["weight"])
        except ValueError as exc:
            problems.append(f"line {lineno}: weight {exc}")
            continue
        if weight < 0:
            problems.append(f"line {lineno}: weight {row['weight']} is negative")
            continue
        weights[unit] = weight
        for column, target in (("min", minimum), ("max", maximum)):
            value = row.get(column, "")
            if value:
                try:
                    target[unit] = int(value)
                except ValueError:
                    problems.append(f"line {lineno}: {column} '{value}' is not a whole number")
                    continue
                if target[unit] < 0:
                    problems.append(f"line {lineno}: {column} {value} is negative")
        if unit in minimum and unit in maximum and minimum[unit] > maximum[unit]:
            problems.append(f"line {lineno}: min {minimum[unit]} is above max {maximum[unit]}")
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems[:20]))
    if not weights:
        raise InputError(f"{path}: no units; add rows like 'A,120'")
    return weights, minimum, maximum


@app.command("apportion")
def apportion_cmd(
    file: Annotated[Path, typer.Argument(help="CSV with columns unit,weight[,min,max].")],
    seats: Annotated[int, typer.Option(help="Number of seats (persons) to hand out.")],
    method: Annotated[str, typer.Option(help="Apportionment method.")] = "hamilton",
    seed: Annotated[
        int | None, typer.Option(help="Seed of the recorded lottery that breaks exact ties.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Apportion SEATS integer seats to the units of FILE in proportion to their weights."""
    if seats < 0:
        raise InputError(f"--seats must be 0 or more, got {seats}")
    canonical = resolve_method(method)
    weights, minimum, maximum = _read_units(file)
    alloc = apportion(
        weights,
        seats,
        canonical,
        minimum=minimum or None,
        maximum=maximum or None,
        seed=seed,
    )
    rows = [
        {
            "unit": unit,
            "weight": float(weights[unit]),
            "weight_exact": exact_text(weights[unit]),
            "quota": float(alloc.quotas[unit]),
            "quota_exact": exact_text(alloc.quotas[unit]),
            "seats": alloc.seats[unit],
            "min": minimum.get(unit),
            "max": maximum.get(unit),
        }
        for unit in weights
    ]
    if fmt is Format.json:
        _dump_json(
            {
                "command": "apportion",
                "fairshare_version": __version__,
                "input": str(file),
                "sources": [f"user file {file}"],
                "method": canonical,
                "total": seats,
                "seed": seed,
                "ties": [t.to_dict() for t in alloc.ties],
                "within_quota": alloc.within_quota(),
                "rows": rows,
            }
        )
        return
    if fmt is Format.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["unit", "weight", "quota", "seats", "quota_exact", "tie_draw"])
        ties = _tie_cells(alloc)
        for row in rows:
            writer.writerow(
                [
                    row["unit"],
                    row["weight_exact"],
                    repr(row["quota"]),
                    row["seats"],
                    row["quota_exact"],
                    ties.get(str(row["unit"]), ""),
                ]
            )
        sys.stdout.write(out.getvalue())
        return
    table = Table(title=f"{seats:,} seats by {canonical}")
    for column in ("Unit", "Weight", "Quota", "Seats"):
        table.add_column(column, justify="left" if column == "Unit" else "right")
    for row in rows:
        table.add_row(
            str(row["unit"]), str(row["weight_exact"]), f"{row['quota']:.4f}", str(row["seats"])
        )
    console = _console()
    console.print(table)
    for line in _ties_text(alloc):
        console.print(line)


# --------------------------------------------------------------------------------------------
# ledger

ledger_app = typer.Typer(
    help="The running fair-share ledger: initialise it, take the next N persons, show it.",
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")


def _read_counts(path: Path, what: str) -> dict[str, int]:
    """Read a CSV ``state,persons`` (received so far, or free capacity)."""
    out: dict[str, int] = {}
    problems: list[str] = []
    for lineno, row in _read_csv(path, ("state", "persons")):
        state = row["state"].upper()
        try:
            value = int(row["persons"])
        except ValueError:
            problems.append(f"line {lineno}: persons '{row['persons']}' is not a whole number")
            continue
        if value < 0:
            problems.append(f"line {lineno}: persons {value} is negative ({what})")
            continue
        if state in out:
            problems.append(f"line {lineno}: state {state} appears twice")
            continue
        out[state] = value
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems[:20]))
    return out


def _ledger_rows(ledger: Ledger) -> list[dict[str, Any]]:
    caps = ledger.caps
    rows = []
    for state, share in ledger.shares.items():
        deviation = ledger.deviation(state)
        rows.append(
            {
                **_share_cells(state, share, ledger.fair_share(state)),
                "received": ledger.received[state],
                "deviation": float(deviation),
                "deviation_exact": str(deviation),
                "within_quota": ledger.within_quota(state),
                "free_capacity": caps.get(state),
            }
        )
    return rows


def _ledger_payload(ledger: Ledger, path: Path, batch: BatchResult | None) -> dict[str, Any]:
    return {
        "command": "ledger",
        "fairshare_version": __version__,
        "ledger": str(path),
        "key": ledger.key,
        "total": ledger.total,
        "largest_unit": ledger.largest_unit,
        "max_abs_deviation": float(ledger.max_abs_deviation()),
        "seed": ledger.seed,
        "tie_order": list(ledger.tie_order),
        "batch": None if batch is None else batch.to_dict(),
        "rows": _ledger_rows(ledger),
    }


def _print_ledger(ledger: Ledger, path: Path, batch: BatchResult | None, fmt: Format) -> None:
    payload = _ledger_payload(ledger, path, batch)
    if fmt is Format.json:
        _dump_json(payload)
        return
    if fmt is Format.csv:
        out = io.StringIO()
        fields = ["state", "share", "fair_share", "received", "deviation", "within_quota"]
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*fields, "placed_in_batch"])
        for row in payload["rows"]:
            placed = batch.placed.get(row["state"], 0) if batch else ""
            cells = [str(row[f]).lower() if isinstance(row[f], bool) else row[f] for f in fields]
            writer.writerow([*cells, placed])
        sys.stdout.write(out.getvalue())
        return
    key = ledger.key
    title = f"Ledger {path.name}: {key.get('title', key.get('name', 'key'))}"
    table = Table(title=title + f" — {ledger.total:,} persons allocated")
    for column in ("State", "Name", "Share %", "Fair share", "Received", "Deviation", "Quota"):
        table.add_column(column, justify="left" if column in ("State", "Name") else "right")
    if batch is not None:
        table.add_column("This batch", justify="right")
    for row in payload["rows"]:
        cells = [
            row["state"],
            row["name"],
            f"{row['share'] * 100:.3f}",
            f"{row['fair_share']:,.2f}",
            f"{row['received']:,}",
            f"{row['deviation']:+,.2f}",
            "within" if row["within_quota"] else "[red]outside[/]",
        ]
        if batch is not None:
            cells.append(f"{batch.placed.get(row['state'], 0):,}")
        table.add_row(*cells)
    console = _console()
    console.print(table)
    if batch is not None and batch.overflow:
        console.print(
            f"[red]{batch.overflow:,} of {batch.persons:,} persons could not be placed: "
            "no state within its share had free capacity (overflow).[/]"
        )
    console.print(
        f"Largest deviation {float(ledger.max_abs_deviation()):.2f} persons "
        f"(largest case booked: {ledger.largest_unit}); tie order (seed {ledger.seed}): "
        + " ".join(ledger.tie_order)
    )


@ledger_app.command("init")
def ledger_init(
    path: Annotated[Path, typer.Argument(help="Ledger file to create (JSON).")],
    key: Annotated[str, typer.Option(help="Key name or key file.")] = "population",
    year: Annotated[int | None, typer.Option(help="Reference year of the key's inputs.")] = None,
    states_: Annotated[
        str | None, typer.Option("--states", help="Participants (groups and/or codes).")
    ] = None,
    exclude: Annotated[str | None, typer.Option(help="Codes to leave out.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the recorded tie-break lottery.")] = 0,
    received: Annotated[
        Path | None, typer.Option(help="CSV state,persons: what each state has received.")
    ] = None,
    caps: Annotated[
        Path | None, typer.Option(help="CSV state,persons: free capacity per state.")
    ] = None,
    indicators: Annotated[
        list[Path] | None, typer.Option(help="CSV (state,year,indicator,value) with own data.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing ledger file.")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Create a ledger for a key: all states start at what they have received (default 0)."""
    if path.exists() and not force:
        raise InputError(f"{path} exists; pass --force to replace it, or use 'ledger take'")
    result = compute_key(
        load_key(key),
        year=year,
        participants=states_,
        exclude=_split(exclude),
        indicators=_indicators(indicators),
    )
    opening = _read_counts(received, "received so far") if received else {}
    free = _read_counts(caps, "free capacity") if caps else {}
    ledger = Ledger.new(
        result.shares,
        seed=seed,
        received=opening,
        caps=free,
        key={
            "name": result.key.name,
            "title": result.key.title,
            "reference": result.key.reference,
            "year": result.year,
            "participants": list(result.states),
        },
    )
    save_ledger(ledger, path)
    _print_ledger(ledger, path, None, fmt)


@ledger_app.command("take")
def ledger_take(
    path: Annotated[Path, typer.Argument(help="Ledger file (JSON), updated in place.")],
    persons: Annotated[int, typer.Argument(help="Number of persons to place.")],
    caps: Annotated[
        Path | None, typer.Option(help="CSV state,persons: free capacity for this batch.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Show the split without saving it.")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Split the next PERSONS persons so that cumulative totals track the key, and save."""
    if persons < 0:
        raise InputError(f"PERSONS must be 0 or more, got {persons}")
    ledger = load_ledger(path)
    batch = ledger.take(persons, caps=_read_counts(caps, "free capacity") if caps else None)
    if not dry_run:
        save_ledger(ledger, path)
    _print_ledger(ledger, path, batch, fmt)


@ledger_app.command("show")
def ledger_show(
    path: Annotated[Path, typer.Argument(help="Ledger file (JSON).")],
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Show each state's share, fair share, received persons and deviation."""
    _print_ledger(load_ledger(path), path, None, fmt)


# --------------------------------------------------------------------------------------------
# demo


@app.command()
def demo(
    total: Annotated[int, typer.Option(help="Number of persons to share out.")] = 160_000,
    year: Annotated[int, typer.Option(help="Year of population and applications.")] = 2015,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Who would carry what: the petition's population key next to the EU's 2015 key and
    next to where people actually applied."""
    if total < 0:
        raise InputError(f"--total must be 0 or more, got {total}")
    indicators = bundled_indicators()
    pop = compute_key("population", year=year, participants="EU28", indicators=indicators)
    pop_alloc = apportion(pop.shares, total, "hamilton")
    eu = compute_key("eu2015", indicators=indicators)
    eu_alloc = apportion(eu.shares, total, "hamilton")
    applied = {s: indicators.get("first_time_applicants", s, year).value for s in pop.states}
    applied_total = sum(applied.values(), Fraction(0))
    rows: list[dict[str, Any]] = []
    for state in pop.states:
        rows.append(
            {
                "state": state,
                "name": _state_name(state),
                "population": int(indicators.get("population", state, year).value),
                "population_share": float(pop.shares[state]),
                "population_key_persons": pop_alloc.seats[state],
                "eu2015_share": float(eu.shares[state]) if state in eu.shares else None,
                "eu2015_persons": eu_alloc.seats.get(state),
                "applied": int(applied[state]),
                "applied_share": float(applied[state] / applied_total),
            }
        )
    if fmt is Format.json:
        _dump_json(
            {
                "command": "demo",
                "total": total,
                "year": year,
                "rows": rows,
                "first_time_applicants_total": int(applied_total),
            }
        )
        return
    if fmt is Format.csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(out.getvalue())
        return
    console = _console()
    table = Table(
        title=f"Sharing {total:,} people across the EU-28 — {year}",
        caption=(
            f"Population key: population on 1 Jan {year} (Eurostat demo_pjan), largest "
            "remainders. EU 2015 key: Council Decision (EU) 2015/1601 over its 23 receiving "
            "states (— = beneficiary or not bound). Applied: first-time asylum applicants "
            f"in {year} (Eurostat migr_asyappctzm), {int(applied_total):,} in all."
        ),
    )
    table.add_column("State")
    table.add_column("Name")
    table.add_column("Population", justify="right")
    table.add_column("Pop. key %", justify="right")
    table.add_column("Persons", justify="right", style="bold")
    table.add_column("EU 2015 key %", justify="right")
    table.add_column("Persons", justify="right")
    table.add_column("Applied", justify="right")
    table.add_column("Applied %", justify="right")
    table.add_column("Applied ÷ pop. key", justify="right")
    for row in rows:
        ratio = row["applied_share"] / row["population_share"]
        style = "red" if ratio > 2 else ("yellow" if ratio > 1 else "")
        eu_share = row["eu2015_share"]
        table.add_row(
            row["state"],
            row["name"],
            f"{row['population']:,}",
            f"{row['population_share'] * 100:.2f}",
            f"{row['population_key_persons']:,}",
            "—" if eu_share is None else f"{eu_share * 100:.2f}",
            "—" if row["eu2015_persons"] is None else f"{row['eu2015_persons']:,}",
            f"{row['applied']:,}",
            f"{row['applied_share'] * 100:.2f}",
            f"[{style}]{ratio:.2f}×[/]" if style else f"{ratio:.2f}×",
        )
    table.add_section()
    table.add_row(
        "",
        "EU-28",
        "",
        "100.00",
        f"{total:,}",
        "100.00",
        f"{total:,}",
        f"{int(applied_total):,}",
        "100.00",
        "",
    )
    console.print(table)
    console.print(
        "Read: 'Applied ÷ pop. key' above 1× means the state received more applicants in "
        f"{year} than its population share; under the petition's key every state carries its "
        "share. Try: fairshare shares --key eu2015 --total 66000 --format json · "
        "fairshare keys · fairshare --help"
    )


# --------------------------------------------------------------------------------------------
# allocate


class AllocateFormat(StrEnum):
    """Output formats of ``allocate``."""

    table = "table"
    json = "json"


_TABLE_ROWS = 40


def _fairness_table(title: str, label: str, rows: Sequence[Mapping[str, Any]], m: int) -> Table:
    """Rows of destinations or states against their fair shares (free places if given)."""
    free = bool(rows) and "free_after" in rows[0]
    table = Table(title=title)
    columns = [label, "fair share", "before", "placed", "after", "deviation"]
    columns += ["free after"] * free + [f"within M={m}"]
    for column in columns:
        table.add_column(column, justify="left" if column == label else "right")
    for row in rows:
        dev = row["deviation"]
        cells = [
            row["id"],
            "–" if row["fair_share"] is None else f"{row['fair_share']:,.1f}",
            f"{row['before']:,}",
            f"{row['placed']:,}",
            f"{row['after']:,}",
            "–" if dev is None else f"{dev:+,.1f}",
        ]
        if free:
            cells.append(f"{row['free_after']:,}")
        within = row["within_bound"]
        cells.append("–" if within is None else ("yes" if within else "no *"))
        table.add_row(*cells)
    return table


def _allocation_table(result: Mapping[str, Any], explain: int = 0) -> str:
    console = Console(highlight=False, soft_wrap=False, width=120, record=True, file=io.StringIO())
    objective = result["objective"]
    title = f"Allocation batch — key {result['key']['name']} {result['key']['year']}"
    console.print(_fairness_table(title, "destination", result["destinations"], objective["M"]))
    if result.get("states"):
        title = "States (their regions together)"
        console.print(_fairness_table(title, "state", result["states"], objective["M"]))
    noted: set[str] = set()
    for row in result["destinations"] + result.get("states", []):
        if row.get("bound_note") and row["id"] not in noted:
            noted.add(row["id"])
            console.print(f"* {row['id']}: {row['bound_note']}")
    levels = ", ".join(
        f"{name} {objective[name]['placed']:,} of at most {objective[name]['bound']:,.0f}"
        for name in ("tier1", "tier2", "total")
    )
    console.print(f"Persons placed: {levels}; gap {objective['gap']:.4%}.")
    waiting = result["waiting"]
    by_code = ", ".join(f"{k} {v:,}" for k, v in waiting["by_code"].items()) or "none"
    cases_word = "case" if waiting["cases"] == 1 else "cases"
    persons_word = "person" if waiting["persons"] == 1 else "persons"
    console.print(
        f"Waiting: {waiting['cases']:,} {cases_word}, {waiting['persons']:,} {persons_word} "
        f"({by_code})."
    )
    cases = Table(title="Cases")
    for column in ("case", "tier", "persons", "destination", "reasons"):
        cases.add_column(column)
    for item in result["assignments"][:_TABLE_ROWS]:
        cases.add_row(
            item["case"],
            str(item["tier"]),
            str(item["persons"]),
            item["destination"] or "waits",
            ", ".join(r["code"] for r in item["reasons"]),
        )
    console.print(cases)
    more = len(result["assignments"]) - _TABLE_ROWS
    if more > 0:
        console.print(f"… {more:,} more cases; --format json gives every case with its reasons.")
    for item in result["assignments"][:explain]:
        where = item["destination"] or "waits"
        console.print(f"\n[bold]{item['case']}[/bold] → {where}")
        for reason in item["reasons"]:
            console.print(f"  • {reason['code']}: {reason['text']}")
    return console.export_text()


@app.command("allocate")
def allocate_command(
    input_file: Annotated[
        Path,
        typer.Argument(metavar="INPUT.json", help="The batch: key, ledger, destinations, cases."),
    ],
    seed: Annotated[
        int | None, typer.Option(help="Seed of the tie draws (else the input's 'seed', else 0).")
    ] = None,
    output_format: Annotated[
        AllocateFormat, typer.Option("--format", help="table for people, json for tools.")
    ] = AllocateFormat.table,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Write the output to this file (atomically) instead of standard output.",
        ),
    ] = None,
    destinations: Annotated[
        Path | None,
        typer.Option(help="Destinations from a JSON or CSV file, replacing the input's."),
    ] = None,
    explain: Annotated[
        int, typer.Option(help="table: print the reasons of the first N cases in full.")
    ] = 0,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes for a large batch with --format json: 2 or more (the default where "
            "this process may use two cores) explains half of the cases in a second process; "
            "the output is the same.",
        ),
    ] = None,
) -> None:
    """Allocate one batch of cases: whole families, the most vulnerable first, fair shares."""
    # A large batch allocates many small objects and no cycles: the cyclic garbage collector
    # only costs time here (measured: 100,000 cases, 13.8 s -> 10.5 s).
    gc.disable()
    try:
        _allocate_command(
            input_file,
            seed,
            output_format,
            output,
            destinations,
            explain,
            _workers() if workers is None else workers,
        )
    finally:
        if _KEEP_UNTIL_EXIT is None:
            gc.enable()
        # else the console script ends right after (run): enabled again, the collector would
        # first walk the millions of objects kept until then (0.15 s for 100,000 cases).


def _allocate_command(
    input_file: Path,
    seed: int | None,
    output_format: AllocateFormat,
    output: Path | None,
    destinations: Path | None,
    explain: int,
    workers: int,
) -> None:
    from fairshare.allocate import allocate, allocate_document
    from fairshare.cases import parse_problem_json

    raw = read_bytes(input_file, "input file")
    if (
        destinations is None
        and output_format is AllocateFormat.json
        and workers > 1
        and len(raw) >= TWO_PROCESSES_MIN_BYTES
        and hasattr(os, "fork")
    ):
        done = _allocate_in_two_processes(raw, seed)
        if done is not None:
            _write_allocation(done[0], output_format, output, explain)
            if _KEEP_UNTIL_EXIT is not None:
                _KEEP_UNTIL_EXIT.extend(done)
            return
    if destinations is None:
        # The fast path: cases decoded straight into their types; any problem in them sends
        # the document through the ordinary reading below, which reports it where it is.
        problem = parse_problem_json(raw)
        if problem is not None:
            result = allocate(problem, seed=seed).to_dict()
            _write_allocation(result, output_format, output, explain)
            if _KEEP_UNTIL_EXIT is not None:
                _KEEP_UNTIL_EXIT.extend((problem, result))
            return
    doc = read_json(input_file, "input file", raw)
    if not isinstance(doc, dict):
        raise InputError(
            f"{input_file}: the input must be a JSON object with key, destinations and cases"
        )
    csv_rows = False
    lines: list[int] = []
    if destinations is not None:
        doc = {**doc, "destinations": read_destinations(destinations, lines)}
        csv_rows = not str(destinations).lower().endswith(".json")
    try:
        result = allocate_document(doc, seed=seed)
    except ValidationError as exc:
        if not csv_rows:
            raise
        # Problems in a destinations CSV are shown by line, not by JSON Pointer.
        problems = []
        for pointer, message in exc.problems:
            match = re.match(r"^/destinations/(\d+)(/.*)?$", pointer)
            if match:
                column = (match.group(2) or "").strip("/").replace("services/", "")
                row = int(match.group(1))
                where = f"{destinations}, line {lines[row] if row < len(lines) else row + 2}"
                pointer = f"{where} ({column})" if column else where
            problems.append((pointer, message))
        raise ValidationError(problems) from None
    _write_allocation(result, output_format, output, explain)
    if _KEEP_UNTIL_EXIT is not None:
        _KEEP_UNTIL_EXIT.extend((doc, result))


#: From this size of input on (about 20,000 cases), ``--workers 2`` uses a second process.
TWO_PROCESSES_MIN_BYTES = 4_000_000


def _allocate_in_two_processes(raw: bytes, seed: int | None) -> tuple[dict[str, Any], Any] | None:
    """Allocate a large batch with two processes; ``None`` if it is not plainly valid.

    A child process is forked before the input is read, so that it shares no large heap
    with this one (after a fork every write to a shared page copies it). Both read the input
    and solve the batch, which is deterministic; the child explains the second half of the
    cases and sends them as JSON after a header with a digest of its decision and the length
    of the JSON; this process explains the first half and the rest of the document. The
    child's half is used only if the child ended normally, its JSON arrived whole and its
    digest equals this process's (the same decision); otherwise, or if the child lags, this
    process explains the second half itself. The output is the same either way.
    """
    from fairshare.allocate import allocate
    from fairshare.cases import parse_problem_json

    sys.stdout.flush()  # nothing buffered is written twice, once by each process
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # pragma: no cover - the child process (its coverage is not collected)
        code = 1
        try:
            os.close(read_end)
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)  # the child says nothing: all it has goes through the pipe
            os.dup2(quiet, 2)
            problem = parse_problem_json(raw)
            if problem is not None:
                n = len(problem.cases)
                done = allocate(problem, seed=seed, explain=range(n // 2, n))
                body = orjson.dumps(done.to_dict()["assignments"])
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(f"{done.digest} {len(body)}\n".encode("ascii") + body)
                code = 0
        finally:
            os._exit(code)  # no clean-up: everything belongs to the parent process
    os.close(write_end)
    started = time.monotonic()
    reaped = False
    try:
        problem = parse_problem_json(raw)
        if problem is None:
            return None
        n = len(problem.cases)
        half = n // 2
        mine = allocate(problem, seed=seed, explain=range(0, half))
        result = mine.to_dict()
        # The child has less to do and is normally done first. If it lags by more than half
        # the time this process took (at least 1 s), explaining the second half here is
        # quicker than waiting on.
        data = _read_all(read_end, max(1.0, 0.5 * (time.monotonic() - started)))
        ended_well = False
        if data is not None:
            reaped = True
            ended_well = _ended_well(pid)
        else:
            reaped = _stop(pid)  # before explaining here: it would compete for a core
        header, _, body = (data or b"").partition(b"\n")
        if ended_well and header == f"{mine.digest} {len(body)}".encode("ascii"):
            if n - half:
                # The child's assignments, already JSON, go into the output as they are.
                result["assignments"].append(orjson.Fragment(body[1:-1]))
        else:
            result["assignments"].extend(mine.explain(range(half, n)))
        return result, (problem, mine)
    finally:
        os.close(read_end)
        if not reaped:
            _stop(pid)


def _ended_well(pid: int) -> bool:
    """Wait for the child; whether it exited with code 0 (False if it is not ours to wait for:
    with SIGCHLD ignored, the system reaps children by itself)."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return False
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _stop(pid: int) -> bool:
    """Stop the child and wait for it (it may have ended already); True when done."""
    try:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):  # still running, so the pid is still its
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        pass
    return True


def _read_all(fd: int, patience: float) -> bytes | None:
    """Everything the child writes to ``fd`` until it closes it, or ``None`` if that takes
    more than ``patience`` seconds."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + patience
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _workers() -> int:
    """Processes for a large batch: two where this process may use two cores."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return min(2, cores)


def _write_allocation(
    result: dict[str, Any], output_format: AllocateFormat, output: Path | None, explain: int
) -> None:
    if output_format is AllocateFormat.json:
        # Compact (orjson; Python's encoder is 4x slower with indentation: 70 MB for 100,000
        # cases); pipe through `python -m json.tool` or jq to read it.
        data = orjson.dumps(result, option=orjson.OPT_APPEND_NEWLINE)
        if output is not None:
            atomic_write_bytes(output, data)
            return
        text = data.decode("utf-8")
    else:
        text = _allocation_table(result, max(0, explain))
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(output, text)


# --------------------------------------------------------------------------------------------
# the service: serve, db, users, demo-data (imports of the service extra are lazy, so the
# allocation commands work without it)


def _service_env(name: str, default: str) -> str:
    return os.environ.get(f"FAIRSHARE_{name}", default).strip() or default


def _database_url() -> str:
    """The registry's URL, as the service's settings derive it, without needing its secrets.

    ``FAIRSHARE_DATABASE_URL``, else ``sqlite:///<FAIRSHARE_DATA_DIR>/fairshare.db`` (data
    directory ``.fairshare`` by default). ``db`` and ``users`` commands need no secrets, so
    they do not load the full settings (which fail closed in production without them).
    """
    url = os.environ.get("FAIRSHARE_DATABASE_URL", "").strip()
    if url:
        return url
    data_dir = Path(_service_env("DATA_DIR", ".fairshare")).expanduser().resolve()
    return f"sqlite:///{data_dir / 'fairshare.db'}"


def _shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the registry itself
        return url


def _prepare_sqlite_dir(url: str) -> None:
    """Create the directory of an SQLite file (the first run of a fresh clone has none)."""
    from sqlalchemy.engine import make_url

    from fairshare.registry.db import normalise_url

    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(str(parsed.database)).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _database_errors(url: str) -> Any:
    """A context that turns a database that cannot be reached into one line (exit 2)."""
    from contextlib import contextmanager

    from sqlalchemy.exc import OperationalError, ProgrammingError

    @contextmanager
    def guard() -> Any:
        try:
            yield
        except (OperationalError, ProgrammingError) as exc:
            reason = " ".join(str(exc.orig or exc).split())[:300]
            raise InputError(
                f"cannot use the database {_shown_url(url)}: {reason}. Check "
                "FAIRSHARE_DATABASE_URL (or FAIRSHARE_DATA_DIR) and that the server is running"
            ) from None

    return guard()


def _upgrade_if_needed(url: str, *, say: Any) -> None:
    """Migrate a new database to the newest schema (saying so); refuse an outdated one."""
    from fairshare.registry import db

    _prepare_sqlite_dir(url)
    with _database_errors(url):
        current = db.current_revision(url)
        head = db.head_revision()
        if current is None:
            say(f"fairshare: new database {_shown_url(url)}: creating the schema ({head})")
            db.upgrade(url)
        elif current != head:
            raise InputError(
                f"the database {_shown_url(url)} is at schema revision {current}, this version "
                f"needs {head}; back it up, then run 'fairshare db upgrade'"
            )


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (uvicorn).")] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = True,
) -> None:
    """Run the REST API (uvicorn): SQLite in FAIRSHARE_DATA_DIR unless FAIRSHARE_DATABASE_URL.

    The configuration is checked first (in production both secrets must be set); a new
    database gets the schema; an outdated one must be upgraded with 'fairshare db upgrade'.
    """
    import importlib.util

    from fairshare.api.settings import load_settings

    if importlib.util.find_spec("fairshare.api.app") is None:
        raise InputError("this installation has no REST API (fairshare.api.app is missing)")
    settings = load_settings()
    _upgrade_if_needed(settings.database_url, say=_say)
    import uvicorn

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    own_sockets = workers > 1 and hasattr(socket, "SO_REUSEPORT")
    if own_sockets:
        _listening_socket(host, port, reuse_port=False).close()  # the port is free
    if settings.using_dev_secrets:
        _say(f"fairshare: {settings.env} mode, generated secrets in {settings.dev_secrets_path}")
    _say(
        f"fairshare: serving {base}/ (the dashboard; API docs {base}/api/docs) on "
        f"{_shown_url(settings.database_url)} with {workers} worker(s); Ctrl+C stops"
    )
    if own_sockets:
        _serve_workers(host, port, workers, access_log)
        return
    uvicorn.run(
        "fairshare.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )


def _listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _serve_worker(host: str, port: int, access_log: bool) -> None:  # pragma: no cover - a child
    """One worker process of ``serve --workers N``: its own socket on the shared port."""
    import uvicorn

    sock = _listening_socket(host, port, reuse_port=True)
    config = uvicorn.Config(
        "fairshare.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run(sockets=[sock])


def _serve_workers(host: str, port: int, workers: int, access_log: bool) -> None:
    """``workers`` uvicorn processes, each listening on its own ``SO_REUSEPORT`` socket.

    With one shared socket (uvicorn's own ``--workers``) whichever worker wakes first
    accepts a whole burst of new connections, and keep-alive clients then stay unevenly
    spread for as long as they are connected (measured: one worker at 90% CPU, the other at
    7%). With a socket per worker the kernel spreads connections over the workers. SIGINT or
    SIGTERM stops every worker gracefully; a worker that dies stops the server (exit 2).
    """
    import multiprocessing
    import signal
    import threading

    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_serve_worker, args=(host, port, access_log), name=f"fairshare-worker-{i}"
        )
        for i in range(workers)
    ]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    for process in processes:
        process.start()
    while not stop.is_set() and all(p.is_alive() for p in processes):
        stop.wait(0.5)
    died = [p for p in processes if not p.is_alive()] if not stop.is_set() else []
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=15)
        if process.is_alive():
            process.kill()
            process.join()
    if died:
        raise InputError(f"a server worker stopped (exit code {died[0].exitcode}); see above")


db_app = typer.Typer(
    help="The registry database (FAIRSHARE_DATABASE_URL; default SQLite in FAIRSHARE_DATA_DIR).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate the database schema to the newest revision (Alembic; back up first)."""
    from fairshare.registry import db

    url = _database_url()
    _prepare_sqlite_dir(url)
    with _database_errors(url):
        before = db.current_revision(url)
        db.upgrade(url, revision)
        after = db.current_revision(url)
    if before == after:
        _say(f"fairshare: {_shown_url(url)} is already at revision {after}")
    else:
        _say(f"fairshare: upgraded {_shown_url(url)} from {before or 'empty'} to {after}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and the newest one this version ships."""
    from fairshare.registry import db

    url = _database_url()
    with _database_errors(url):
        current = db.current_revision(url) if _database_exists(url) else None
    head = db.head_revision()
    state = "up to date" if current == head else "run 'fairshare db upgrade'"
    _say(f"{_shown_url(url)}: revision {current or 'none (empty)'}; newest {head} ({state})")


def _database_exists(url: str) -> bool:
    """False for an SQLite file that does not exist (do not create it just to look)."""
    from sqlalchemy.engine import make_url

    from fairshare.registry.db import normalise_url

    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite":
        return True
    return Path(str(parsed.database)).expanduser().exists()


users_app = typer.Typer(help="Users of the service.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _read_password(username: str) -> str:
    """FAIRSHARE_PASSWORD, else standard input (a prompt without echo, twice, on a terminal)."""
    password = os.environ.get("FAIRSHARE_PASSWORD")
    if password is None:
        if sys.stdin.isatty():
            import getpass

            password = getpass.getpass(f"Password for {username}: ")
            if getpass.getpass("Repeat it: ") != password:
                raise InputError("the two passwords differ; nothing was created")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InputError("no password given; set FAIRSHARE_PASSWORD or pass it on standard input")
    return password


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="User name (login).")],
    role: Annotated[
        str,
        typer.Option(
            help="registrar, caseworker, capacity_manager, coordinator, auditor, analyst, admin."
        ),
    ],
    state: Annotated[
        str | None,
        typer.Option(help="Member state (Eurostat code) of a state-bound role, e.g. EL."),
    ] = None,
) -> None:
    """Create a user; the password comes from FAIRSHARE_PASSWORD or standard input."""
    from fairshare.api.permissions import Role, requires_state
    from fairshare.api.security import hash_password
    from fairshare.registry.db import make_engine, session_scope
    from fairshare.registry.services import Actor, create_user

    roles = [r.value for r in Role]
    if role not in roles:
        raise InputError(f"unknown role '{role}'; use one of {', '.join(roles)}")
    code = state.strip().upper() if state else None
    if requires_state(role) and not code:
        raise InputError(f"a {role} acts for one member state: add --state (e.g. --state EL)")
    if code is not None and not requires_state(role):
        raise InputError(f"a {role} is not bound to a state; leave out --state")
    if code is not None and code not in states():
        raise InputError(f"unknown state '{code}'; use a Eurostat code such as EL, IT or DE")
    password_hash = hash_password(_read_password(name), name)
    url = _database_url()
    _upgrade_if_needed(url, say=_say)
    engine = make_engine(url)
    try:
        with _database_errors(url), session_scope(engine) as session:
            create_user(
                session,
                Actor("command-line", "admin"),
                username=name,
                password_hash=password_hash,
                role=role,
                state=code,
            )
    finally:
        engine.dispose()
    where = f" for {code}" if code else ""
    _say(f"fairshare: created user '{name}' ({role}{where}) in {_shown_url(url)}")


@app.command("demo-data")
def demo_data(
    cases: Annotated[int, typer.Option(help="Synthetic cases to register.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 2026,
) -> None:
    """Seed an empty registry ONCE with synthetic demo data and demo users (development only).

    Every case is synthetic (fairshare.synthetic; names like 'Demo 1 Synthetic-00042'): no
    real person. A second run says it is already seeded and prints the demo logins.
    """
    if _service_env("ENV", "production") not in ("development", "test"):
        raise InputError(
            "demo data is synthetic and only for development: refusing with FAIRSHARE_ENV="
            f"{_service_env('ENV', 'production')}; set FAIRSHARE_ENV=development"
        )
    from fairshare.api.security import hash_password
    from fairshare.api.settings import load_settings
    from fairshare.registry.demo import seed_demo

    settings = load_settings()
    url = settings.database_url
    _upgrade_if_needed(url, say=_say)
    _say(f"fairshare: seeding synthetic demo data into {_shown_url(url)} (once; ~30 s)")
    with _database_errors(url):
        result = seed_demo(
            url,
            fingerprint_key=settings.fingerprint_key_bytes(),
            hash_password=hash_password,
            cases=cases,
            seed=seed,
        )
    if result.seeded:
        counts = ", ".join(f"{n} {s}" for s, n in result.statuses.items())
        _say(
            f"fairshare: seeded {result.cases} SYNTHETIC cases ({result.persons} persons; "
            f"{counts}) and {len(result.batches)} committed batches"
        )
    else:
        _say("fairshare: the demo data is already seeded; nothing was changed")
    _say(f"Demo logins (development only), password '{result.password}' for each:")
    for username, role, code in result.users:
        _say(f"  {username:<15} {role}{f' ({code})' if code else ''}")


from fairshare.cli_simulate import register as register_simulation  # noqa: E402

register_simulation(app)


# --------------------------------------------------------------------------------------------
# entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; map bad input and usage errors to one line on stderr and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="fairshare", standalone_mode=False)
    except FairshareError as exc:
        sys.stderr.write(f"fairshare: error: {exc}\n")
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        sys.stderr.write("fairshare: aborted\n")
        return 1
    except Exception as exc:
        # Usage errors of the command-line parser (click's ClickException, which typer
        # vendors): one line, exit code 2, as for bad input.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            message = " ".join(str(exc.format_message()).split())
            sys.stderr.write(f"fairshare: error: {message}\n")
            return int(getattr(exc, "exit_code", 2)) or 2
        raise
    return 0


#: Set by :func:`run` (the console script): what a command keeps alive until the process ends.
_KEEP_UNTIL_EXIT: list[object] | None = None


def run() -> None:
    """The ``fairshare`` console script: :func:`main`, then the process ends.

    After a large allocation the process ends without freeing its millions of small objects
    one by one (a tenth of a second for 100,000 cases, for nothing: the operating system
    takes the memory back at once); the output is written and flushed before.
    """
    global _KEEP_UNTIL_EXIT
    _KEEP_UNTIL_EXIT = []
    code = main()
    if _KEEP_UNTIL_EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
