"""The real command line, run as a subprocess exactly as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fairshare.reference import group_members

EXE = Path(sys.executable).parent / "fairshare"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "fairshare.cli"]
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


def run_json(*args: str) -> dict[str, Any]:
    proc = run(*args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def test_shares_population_160000_eu28_2015() -> None:
    data = run_json(
        "shares",
        "--key",
        "population",
        "--total",
        "160000",
        "--year",
        "2015",
        "--states",
        "EU28",
        "--method",
        "hamilton",
    )
    assert data["key"] == "population"
    assert data["method"] == "hamilton"
    assert data["total"] == 160000
    assert data["year"] == 2015
    rows = data["rows"]
    assert [r["state"] for r in rows] == group_members("EU28")
    assert sum(r["persons"] for r in rows) == 160000
    assert abs(sum(r["share"] for r in rows) - 1) < 1e-12
    for row in rows:
        assert set(row) >= {"state", "share", "fair_share", "persons", "share_exact"}
        assert isinstance(row["persons"], int)
        assert row["persons"] in (int(row["fair_share"]), int(row["fair_share"]) + 1)
    assert {"EL", "UK"} <= {r["state"] for r in rows}
    assert any(i["indicator"] == "population" and i["state"] == "DE" for i in data["inputs"])
    assert any("demo_pjan" in s for s in data["sources"])
    assert data["ties"] == []


def test_shares_eu2015_default_participants() -> None:
    data = run_json("shares", "--key", "eu2015", "--total", "66000")
    states = [r["state"] for r in data["rows"]]
    assert len(states) == 23
    assert not {"EL", "IT", "DK", "IE", "UK"} & set(states)
    assert sum(r["persons"] for r in data["rows"]) == 66000


@pytest.mark.parametrize(
    "method",
    [
        "hamilton",
        "largest-remainder",
        "webster",
        "sainte-lague",
        "jefferson",
        "dhondt",
        "adams",
        "huntington-hill",
        "dean",
        "quota",
    ],
)
def test_every_method_name_works(method: str) -> None:
    data = run_json("shares", "--total", "1000", "--year", "2015", "--method", method)
    assert sum(r["persons"] for r in data["rows"]) == 1000


def test_shares_table_and_csv_are_readable() -> None:
    table = run("shares", "--total", "1000", "--year", "2015")
    assert table.returncode == 0, table.stderr
    assert "Germany" in table.stdout
    assert "1,000" in table.stdout
    csv_out = run("shares", "--total", "1000", "--year", "2015", "--format", "csv")
    assert csv_out.returncode == 0
    lines = csv_out.stdout.splitlines()
    assert lines[0] == "state,name,share,fair_share,persons,share_exact,tie_draw"
    assert len(lines) == 29


def test_json_is_byte_identical_when_repeated() -> None:
    args = ("shares", "--key", "eu2015", "--total", "66000", "--format", "json")
    assert run(*args).stdout == run(*args).stdout


def test_apportion_file(tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text("unit,weight\nA,6\nB,6\nC,2\n")
    data = run_json("apportion", str(units), "--seats", "10", "--method", "hamilton")
    assert [r["seats"] for r in data["rows"]] == [4, 4, 2]
    assert [r["unit"] for r in data["rows"]] == ["A", "B", "C"]
    assert data["rows"][0]["quota"] == pytest.approx(60 / 14)
    data = run_json("apportion", str(units), "--seats", "11", "--method", "hamilton")
    assert [r["seats"] for r in data["rows"]] == [5, 5, 1]  # the Alabama paradox


def test_apportion_min_max(tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text("unit,weight,min,max\nbig,1000,,5\nsmall,1,1,\nmid,10,,\n")
    data = run_json("apportion", str(units), "--seats", "12", "--method", "webster")
    seats = {r["unit"]: r["seats"] for r in data["rows"]}
    assert seats["big"] == 5
    assert seats["small"] >= 1
    assert sum(seats.values()) == 12


def test_tie_needs_a_seed_and_the_draw_is_recorded(tmp_path: Path) -> None:
    units = tmp_path / "tie.csv"
    units.write_text("unit,weight\nA,3\nB,3\nC,4\n")
    proc = run("apportion", str(units), "--seats", "2")
    assert proc.returncode == 2
    assert "--seed" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    data = run_json("apportion", str(units), "--seats", "2", "--seed", "7")
    seats = {r["unit"]: r["seats"] for r in data["rows"]}
    assert seats["C"] == 1
    assert seats["A"] + seats["B"] == 1
    assert len(data["ties"]) == 1
    tie = data["ties"][0]
    assert sorted(tie["tied"]) == ["A", "B"]
    assert tie["seed"] == 7
    again = run_json("apportion", str(units), "--seats", "2", "--seed", "7")
    assert again == data


BAD_INPUTS = [
    (("shares", "--total", "100", "--states", "DE,XX"), "unknown state 'XX'"),
    (("shares", "--total", "100", "--states", "GR,DE"), "EL for GR"),
    (("shares", "--total", "-5"), "--total must be 0 or more"),
    (
        ("shares", "--total", "100", "--year", "1950", "--states", "DE,FR"),
        "population for DE in 1950 is not in the bundled data",
    ),
    (
        ("shares", "--total", "100", "--key", "eu2015", "--states", "DE,LI"),
        "for LI in 2014 is not in the bundled data",
    ),
    (("shares", "--total", "100", "--method", "borda"), "unknown"),
    (("shares", "--total", "lots"), "Invalid value for '--total'"),
    (("shares", "--total", "100", "--key", "nokey"), "unknown key 'nokey'"),
    (("shares",), "--total"),
    (("frobnicate",), "frobnicate"),
    (("apportion", "missing.csv", "--seats", "3"), "missing.csv: no such file"),
    (("shares", "--total", "100", "--indicators", "missing.csv"), "missing.csv: no such file"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_INPUTS)
def test_bad_input_exits_2_with_one_line(args: tuple[str, ...], fragment: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("unit,weight\nA,1\nA,2\n", "line 3: unit 'A' appears twice"),
        ("unit,weight\nA,x\n", "line 2: weight 'x' is not a number"),
        ("unit,weight\nA,-1\n", "line 2: weight -1 is negative"),
        ("name,size\nA,1\n", "the header must be unit,weight"),
        ("unit,weight,min\nA,1,one\n", "line 2: min 'one' is not a whole number"),
        ("unit,weight\nA,1,9\n", "line 2: more fields than the header has"),
        ("unit,weight\n", "no units"),
    ],
)
def test_malformed_csv_exits_2(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "units.csv"
    path.write_text(content)
    proc = run("apportion", str(path), "--seats", "3")
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_infeasible_bounds_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    path.write_text("unit,weight,min,max\nA,1,5,\nB,1,5,\n")
    proc = run("apportion", str(path), "--seats", "3")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_demo_runs_and_explains() -> None:
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    assert "160,000" in proc.stdout
    assert "Germany" in proc.stdout
    data = run_json("demo")
    assert data["first_time_applicants_total"] == 1_257_580
    assert sum(r["population_key_persons"] for r in data["rows"]) == 160_000
    de = next(r for r in data["rows"] if r["state"] == "DE")
    assert de["applied"] == 441_895


def test_keys_lists_references() -> None:
    data = run_json("keys")
    names = [r["name"] for r in data["rows"]]
    assert names == ["population", "eu2015", "eu2015-may", "pact2024"]


def test_help_exits_0() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    assert "shares" in proc.stdout


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("unit,weight\nA,1e9999\n", "exponent beyond"),
        ("unit,weight\nA,1e999999999\n", "exponent beyond"),
        ("unit,weight\nA,1e-999999\n", "exponent beyond"),
        ("unit,weight\nA," + "9" * 100 + "\n", "more than 60 digits"),
        ("unit,weight,weight\nA,1,2\n", "a column appears twice"),
        ('unit,weight\n"A\nB",1\n', "line break"),
        ("unit,weight,min,max\nA,1,5,2\n", "line 2: min 5 is above max 2"),
    ],
)
def test_hostile_unit_files_exit_2(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "units.csv"
    path.write_text(content)
    proc = run("apportion", str(path), "--seats", "3")
    assert proc.returncode == 2, proc.stderr
    assert fragment in proc.stderr
    assert "units.csv" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_spreadsheet_csv_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    path.write_bytes("\ufeffunit,weight\nA,1\nB,3\n".encode())
    data = run_json("apportion", str(path), "--seats", "4")
    assert [r["seats"] for r in data["rows"]] == [1, 3]
    assert data["input"] == str(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    proc = run("apportion", str(tmp_path), "--seats", "3")
    assert proc.returncode == 2
    assert "is a directory" in proc.stderr


def test_quota_method_refuses_absurd_house_sizes(tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    path.write_text("unit,weight\nA,1\nB,2\n")
    proc = run("apportion", str(path), "--seats", "100000000", "--method", "quota")
    assert proc.returncode == 2
    assert "limit" in proc.stderr
    fast = run_json("apportion", str(path), "--seats", "1000000000000", "--method", "webster")
    assert sum(r["seats"] for r in fast["rows"]) == 10**12


def test_csv_output_records_the_tie_draw(tmp_path: Path) -> None:
    path = tmp_path / "tie.csv"
    path.write_text("unit,weight\nA,3\nB,3\nC,4\n")
    proc = run("apportion", str(path), "--seats", "2", "--seed", "7", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(",tie_draw")
    assert sum("won seeded lottery (seed 7)" in line for line in lines) == 1
    assert sum("lost seeded lottery (seed 7)" in line for line in lines) == 1


def test_huge_indicator_value_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ind.csv"
    path.write_text("state,year,indicator,value\nDE,2015,population,1e400\n")
    proc = run("shares", "--total", "10", "--year", "2015", "--indicators", str(path))
    assert proc.returncode == 2
    assert "line 2" in proc.stderr


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("fairshare ")
