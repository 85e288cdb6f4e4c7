"""The ledger through the real command line: init, take, show, carried between runs."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import run, run_json


def test_ledger_init_take_show_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    init = run("ledger", "init", str(path), "--year", "2015", "--states", "EU28", "--seed", "4")
    assert init.returncode == 0, init.stderr
    assert path.exists()
    first = run_json("ledger", "take", str(path), "100000")
    assert first["total"] == 100_000
    assert first["batch"]["placed"]["DE"] > 0
    assert all(row["within_quota"] for row in first["rows"])
    second = run_json("ledger", "take", str(path), "60000")
    assert second["total"] == 160_000
    assert all(row["within_quota"] for row in second["rows"])
    # Batch-size invariance through the CLI: one batch of 160,000 gives the same totals.
    other = tmp_path / "other.json"
    assert run("ledger", "init", str(other), "--year", "2015", "--seed", "4").returncode == 0
    once = run_json("ledger", "take", str(other), "160000")
    assert [r["received"] for r in once["rows"]] == [r["received"] for r in second["rows"]]
    shown = run_json("ledger", "show", str(path))
    assert shown["rows"] == second["rows"]
    assert shown["key"]["name"] == "population"
    assert shown["key"]["year"] == 2015
    saved = json.loads(path.read_text())
    assert saved["format"] == "fairshare-ledger"


def test_ledger_state_above_share_waits(tmp_path: Path) -> None:
    received = tmp_path / "received.csv"
    received.write_text("state,persons\nDE,5000\n")
    path = tmp_path / "ledger.json"
    proc = run(
        "ledger",
        "init",
        str(path),
        "--year",
        "2015",
        "--states",
        "DE,FR,IT",
        "--received",
        str(received),
    )
    assert proc.returncode == 0, proc.stderr
    data = run_json("ledger", "take", str(path), "3000")
    assert data["batch"]["placed"]["DE"] == 0
    assert data["batch"]["placed"]["FR"] + data["batch"]["placed"]["IT"] == 3000


def test_ledger_caps_report_overflow(tmp_path: Path) -> None:
    caps = tmp_path / "caps.csv"
    caps.write_text("state,persons\nDE,10\nFR,10\n")
    path = tmp_path / "ledger.json"
    assert run("ledger", "init", str(path), "--year", "2015", "--states", "DE,FR").returncode == 0
    data = run_json("ledger", "take", str(path), "25", "--caps", str(caps))
    assert data["batch"]["overflow"] == 5
    assert data["total"] == 20
    # --caps is the free capacity for this batch: with none left, everybody overflows.
    full = tmp_path / "full.csv"
    full.write_text("state,persons\nDE,0\nFR,0\n")
    table = run("ledger", "take", str(path), "3", "--caps", str(full), "--dry-run")
    assert "could not be placed" in table.stdout


def test_ledger_dry_run_saves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    assert run("ledger", "init", str(path), "--year", "2015").returncode == 0
    before = path.read_bytes()
    assert run("ledger", "take", str(path), "500", "--dry-run").returncode == 0
    assert path.read_bytes() == before


def test_ledger_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    assert run("ledger", "init", str(path), "--year", "2015").returncode == 0
    again = run("ledger", "init", str(path), "--year", "2015")
    assert again.returncode == 2
    assert "--force" in again.stderr
    negative = run("ledger", "take", str(path), "--", "-3")
    assert negative.returncode == 2
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "fairshare-ledger", "version": 1')
    proc = run("ledger", "take", str(corrupt), "3")
    assert proc.returncode == 2
    assert "corrupt.json" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert corrupt.read_text() == '{"format": "fairshare-ledger", "version": 1'
    caps = tmp_path / "caps.csv"
    caps.write_text("state,persons\nDE,lots\n")
    bad_caps = run("ledger", "take", str(path), "3", "--caps", str(caps))
    assert bad_caps.returncode == 2
    assert "line 2: persons 'lots'" in bad_caps.stderr
    missing = run("ledger", "show", str(tmp_path / "nope.json"))
    assert missing.returncode == 2


def test_ledger_file_errors_and_permissions(tmp_path: Path) -> None:
    into_dir = run("ledger", "init", str(tmp_path), "--force")
    assert into_dir.returncode == 2
    assert "is a directory" in into_dir.stderr
    no_folder = run("ledger", "init", str(tmp_path / "nope" / "l.json"))
    assert no_folder.returncode == 2
    assert "does not exist" in no_folder.stderr
    path = tmp_path / "ledger.json"
    assert run("ledger", "init", str(path), "--year", "2015").returncode == 0
    path.chmod(0o640)
    assert run("ledger", "take", str(path), "10").returncode == 0
    assert path.stat().st_mode & 0o777 == 0o640
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000)
    proc = run("ledger", "show", str(nested))
    assert proc.returncode == 2
    assert "nested.json" in proc.stderr
    huge = run("ledger", "take", str(path), "1000000000000")
    assert huge.returncode == 2
    assert "split the batch" in huge.stderr


def test_ledger_counts_file_with_extra_field(tmp_path: Path) -> None:
    caps = tmp_path / "caps.csv"
    caps.write_text("state,persons\nDE,5,9\n")
    path = tmp_path / "ledger.json"
    assert run("ledger", "init", str(path), "--year", "2015").returncode == 0
    proc = run("ledger", "take", str(path), "3", "--caps", str(caps))
    assert proc.returncode == 2
    assert "line 2: more fields than the header has" in proc.stderr
