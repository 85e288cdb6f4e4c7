"""The simulate and sweep commands, through a Typer app as ``fairshare.cli`` registers them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fairshare.cli_simulate import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()

    @application.callback()
    def _root() -> None:
        """fairshare"""

    register(application)
    return application


def test_simulate_json_contract(app: typer.Typer) -> None:
    result = CliRunner().invoke(
        app,
        ["simulate", "--scenario", "2015", "--policy", "observed,population", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    start = result.stdout.index("{")
    payload = json.loads(result.stdout[start:])
    de = payload["policies"]["population"]["states"]["DE"]
    assert set(de) >= {"received", "per_1000", "fair_share"}
    assert payload["policies"]["observed"]["states"]["DE"]["received"] == 441_895
    assert "metrics" in payload["policies"]["population"]


def test_simulate_writes_report_and_tables(app: typer.Typer, tmp_path: Path) -> None:
    report = tmp_path / "out.html"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--scenario",
            "2016",
            "--policy",
            "dublin,population",
            "--report",
            str(report),
            "--out",
            str(tmp_path / "all"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert report.read_text("utf-8").startswith("<!doctype html>")
    names = {p.name for p in (tmp_path / "all").iterdir()}
    assert {"states.csv", "states.parquet", "timeseries.parquet", "per-capita.png"} <= names


def test_unknown_policy_is_an_input_error(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["simulate", "--policy", "nonsense"])
    assert result.exit_code != 0
    assert "unknown policy" in str(result.exception)
