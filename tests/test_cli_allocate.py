"""``fairshare allocate`` through the real command line: destinations from CSV, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def test_huge_numbers_are_bad_input_not_a_traceback(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(BATCH))
    doc["destinations"][0]["capacity"] = 10**19
    doc["cases"][0]["scores"] = {"DE": 10**400}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc), "utf-8")
    proc = run("allocate", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "/destinations/0/capacity" in proc.stderr
    assert "/cases/0/scores/DE" in proc.stderr


def test_csv_lines_count_blank_lines_and_odd_numbers_are_reported(tmp_path: Path) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps(BATCH), "utf-8")
    places = tmp_path / "places.csv"
    places.write_text("id,capacity\n\nDE,--5\nSE,-3\n", "utf-8")
    proc = run("allocate", str(batch), "--destinations", str(places))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "line 3 (capacity)" in proc.stderr
    assert "line 4 (capacity)" in proc.stderr


def test_linked_cases_bound_to_two_regions_that_tie_wait_for_a_caseworker(
    tmp_path: Path,
) -> None:
    def case(cid: str, region: str, linked: list[str]) -> dict[str, object]:
        return {
            "id": cid,
            "entry_state": "EL",
            "registered_on": "2015-10-01",
            "members": [{"id": f"{cid}-1", "age": 40}],
            "family_links": [{"state": region, "relation": "spouse", "status": "beneficiary"}],
            "linked_cases": linked,
        }

    doc = {
        "key": {"name": "population", "year": 2015},
        "destinations": [
            {"id": "DE-BY", "parent": "DE", "capacity": 10},
            {"id": "DE-NW", "parent": "DE", "capacity": 10},
        ],
        "cases": [case("c1", "DE-BY", ["c2"]), case("c2", "DE-NW", [])],
    }
    path = tmp_path / "tie.json"
    path.write_text(json.dumps(doc), "utf-8")
    proc = run("allocate", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for item in out["assignments"]:
        assert item["destination"] is None
        codes = [r["code"] for r in item["reasons"]]
        assert "waiting_link" in codes
        text = next(r["text"] for r in item["reasons"] if r["code"] == "waiting_link")
        assert "caseworker" in text


def test_an_exclusion_may_name_a_state_given_as_regions(tmp_path: Path) -> None:
    doc = {
        "key": {"name": "population", "year": 2015},
        "destinations": [
            {"id": "DE-BY", "parent": "DE", "capacity": 10},
            {"id": "AT", "capacity": 10},
        ],
        "cases": [
            {
                "id": "c1",
                "entry_state": "EL",
                "registered_on": "2015-10-01",
                "members": [{"id": "p1", "age": 40}],
                "excluded": [{"state": "DE", "reason": "safety"}],
                "preferences": ["DE"],
            }
        ],
    }
    path = tmp_path / "ex.json"
    path.write_text(json.dumps(doc), "utf-8")
    proc = run("allocate", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (item,) = json.loads(proc.stdout)["assignments"]
    assert item["destination"] == "AT"
    pref = next(r["text"] for r in item["reasons"] if r["code"] == "preference")
    assert "excluded" in pref


def test_the_table_shows_states_when_regions_are_destinations(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(BATCH))
    doc["destinations"] = [
        {"id": "DE-BY", "parent": "DE", "capacity": 1, "services": {"maternity": 1}},
        {"id": "DE-NW", "parent": "DE", "capacity": 1},
    ]
    path = tmp_path / "regions.json"
    path.write_text(json.dumps(doc), "utf-8")
    proc = run("allocate", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "States (their regions together)" in proc.stdout
    assert "DE-BY" in proc.stdout
    assert "free after" in proc.stdout


# --------------------------------------------------------------------------------------------
# --workers 2: a second process explains half of a large batch; the output is the same.


def _large_input(tmp_path: Path) -> Path:
    import orjson

    from fairshare.cli import TWO_PROCESSES_MIN_BYTES
    from fairshare.synthetic import synthetic_document

    path = tmp_path / "large.json"
    path.write_bytes(orjson.dumps(synthetic_document(20_000, seed=21, scarcity=0.7)))
    assert path.stat().st_size >= TWO_PROCESSES_MIN_BYTES  # the second process is used
    return path


def test_two_processes_write_what_one_writes(tmp_path: Path) -> None:
    source = _large_input(tmp_path)
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}.json"
        proc = run(
            "allocate", str(source), "--format", "json", "-o", str(out), "--workers", workers
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert len(json.loads(outputs[1])["assignments"]) == 20_000


def test_two_processes_fall_back_when_the_child_decides_otherwise_or_fails(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import os

    import orjson

    import fairshare.allocate as allocate_module
    from fairshare.cli import _allocate_in_two_processes

    raw = _large_input(tmp_path).read_bytes()
    expected = allocate_module.allocate_document(orjson.loads(raw), seed=5)
    parent = os.getpid()
    real = allocate_module.allocate
    # As it should go: the child's half is used, this process explains no more cases.
    explained: list[range] = []
    explain = allocate_module.Allocation.explain

    def counted(self: Any, which: range) -> Any:
        explained.append(which)
        return explain(self, which)

    monkeypatch.setattr(allocate_module.Allocation, "explain", counted)
    done = _allocate_in_two_processes(raw, 5)
    assert done is not None
    assert orjson.dumps(done[0]) == orjson.dumps(expected)
    assert explained == []

    def other_decision(*args: Any, **kwargs: Any) -> Any:
        done = real(*args, **kwargs)
        if os.getpid() != parent:
            done.digest = "something else"  # as if the child had solved differently
        return done

    monkeypatch.setattr(allocate_module, "allocate", other_decision)
    done = _allocate_in_two_processes(raw, 5)
    assert done is not None
    assert orjson.dumps(done[0]) == orjson.dumps(expected)

    def failing(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        return real(*args, **kwargs)

    monkeypatch.setattr(allocate_module, "allocate", failing)
    done = _allocate_in_two_processes(raw, 5)
    assert done is not None
    assert orjson.dumps(done[0]) == orjson.dumps(expected)
    assert explained == [range(10_000, 20_000)] * 2  # both times this process did it
    # Not a plainly valid batch: None, and the ordinary reading reports its problems.
    bad = raw.replace(b'"entry_state":"EL"', b'"entry_state":"GR"', 1)
    assert bad != raw
    assert _allocate_in_two_processes(bad, 5) is None


def test_invalid_utf8_and_deep_nesting_are_bad_input_not_a_traceback(tmp_path: Path) -> None:
    doc = (
        '{"key": {"name": "population"}, "destinations": [{"id": "DE", "capacity": 5}], '
        '"cases": [{"id": "c1", "entry_state": "EL", "registered_on": "2015-10-02", '
        '"members": [{"id": "p1", "age": 30, "sex": "SEX"}]}]}'
    )
    for name, data in (
        ("utf8.json", doc.encode().replace(b"SEX", b"\xff")),
        ("surrogate.json", doc.encode().replace(b"SEX", b"\xed\xa0\x80")),
        (
            "deep.json",
            doc.replace('"population"', '"population", "x": ' + "[" * 3000 + "]" * 3000).encode(),
        ),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        out = tmp_path / "out.json"
        proc = run("allocate", str(path), "--format", "json", "-o", str(out))
        assert proc.returncode == 2, (name, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("fairshare: error:"), proc.stderr
        assert not out.exists()


def test_two_processes_check_that_the_childs_half_arrived_whole(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import os
    import signal

    import orjson

    import fairshare.allocate as allocate_module
    import fairshare.cli as cli_module

    raw = _large_input(tmp_path).read_bytes()
    expected = orjson.dumps(allocate_module.allocate_document(orjson.loads(raw), seed=2))
    parent = os.getpid()
    fdopen = os.fdopen

    class HalfWritten:
        def __init__(self, f: Any) -> None:
            self.f = f

        def __enter__(self) -> HalfWritten:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def write(self, data: bytes) -> int:
            return int(self.f.write(data[: len(data) // 2]))  # then ends as if all was well

    def cut(fd: int, *args: Any, **kwargs: Any) -> Any:
        f = fdopen(fd, *args, **kwargs)
        return HalfWritten(f) if os.getpid() != parent else f

    monkeypatch.setattr(cli_module.os, "fdopen", cut)
    done = cli_module._allocate_in_two_processes(raw, 2)
    assert done is not None
    assert orjson.dumps(done[0]) == expected
    monkeypatch.setattr(cli_module.os, "fdopen", fdopen)
    # With SIGCHLD ignored the system reaps the child itself: still the same document.
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        done = cli_module._allocate_in_two_processes(raw, 2)
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert done is not None
    assert orjson.dumps(done[0]) == expected
