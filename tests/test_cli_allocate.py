"""``fairshare allocate`` through the real command line: destinations from CSV, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import run

BATCH = {
    "key": {"name": "population", "year": 2015},
    "destinations": [{"id": "DE", "capacity": 1, "services": {"maternity": 1}}],
    "cases": [
        {
            "id": "c1",
            "entry_state": "EL",
            "registered_on": "2015-10-02",
            "members": [{"id": "p1", "age": 34, "vulnerabilities": ["pregnant"]}],
        },
        {
            "id": "c2",
            "entry_state": "EL",
            "registered_on": "2015-10-01",
            "members": [{"id": "p2", "age": 30}],
        },
    ],
}


def test_destinations_from_csv_replace_the_input_and_are_used(tmp_path: Path) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps(BATCH), "utf-8")
    places = tmp_path / "places.csv"
    places.write_text("id,capacity,maternity\nDE,0,0\nSE,3,1\n", "utf-8")
    proc = run("allocate", str(batch), "--destinations", str(places), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    placed = {a["case"]: a["destination"] for a in out["assignments"]}
    assert placed == {"c1": "SE", "c2": "SE"}
    assert [d["id"] for d in out["destinations"]] == ["DE", "SE"]


def test_problems_in_a_destinations_csv_are_shown_by_line(tmp_path: Path) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps(BATCH), "utf-8")
    places = tmp_path / "places.csv"
    places.write_text("id,capacity,maternity\nDE,10,20\nSE,-1,\nGR,5,\n", "utf-8")
    out = tmp_path / "out.json"
    proc = run("allocate", str(batch), "--destinations", str(places), "-o", str(out))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "3 problems" in proc.stderr
    assert "line 2 (maternity)" in proc.stderr
    assert "line 3 (capacity)" in proc.stderr
    assert "line 4 (id)" in proc.stderr
    assert "EL for GR" in proc.stderr
    assert not out.exists()


def test_the_table_explains_cases_in_full(tmp_path: Path) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps(BATCH), "utf-8")
    proc = run("allocate", str(batch), "--explain", "2")
    assert proc.returncode == 0, proc.stderr
    # One place: the pregnant woman (tier 1) takes it although registered a day later.
    assert "c1 → DE" in proc.stdout
    assert "c2 → waits" in proc.stdout
    assert "Waiting: 1 case, 1 person" in proc.stdout
    assert "waiting_capacity: Waits" in proc.stdout


def test_deeply_nested_json_is_bad_input(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000, "utf-8")
    proc = run("allocate", str(deep))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
