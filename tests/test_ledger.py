"""Worked examples for the running fair-share ledger (fairshare.ledger)."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from math import ceil, floor
from pathlib import Path

import pytest

from fairshare.errors import InfeasibleError, InputError, UnknownStateError
from fairshare.ledger import Ledger, lottery_order
from fairshare.storage import load_ledger, save_ledger

THIRDS = {"A": Fraction(1, 2), "B": Fraction(1, 3), "C": Fraction(1, 6)}

# Population 1 January 2015 in thousands (Eurostat demo_pjan): EU-28 + EFTA, 32 states.
# Liechtenstein's share is about 0.00007.
POPULATION_2015 = {
    "AT": 8584, "BE": 11237, "BG": 7202, "CH": 8237, "CY": 847, "CZ": 10538, "DE": 81197,
    "DK": 5659, "EE": 1314, "EL": 10858, "ES": 46449, "FI": 5471, "FR": 66458, "HR": 4225,
    "HU": 9855, "IE": 4677, "IS": 329, "IT": 60795, "LI": 37, "LT": 2921, "LU": 562,
    "LV": 1986, "MT": 439, "NL": 16900, "NO": 5166, "PL": 38005, "PT": 10374, "RO": 19870,
    "SE": 9747, "SI": 2062, "SK": 5421, "UK": 64853,
}  # fmt: skip


def population_key() -> dict[str, Fraction]:
    total = sum(POPULATION_2015.values())
    return {c: Fraction(v, total) for c, v in POPULATION_2015.items()}


def all_within_quota(ledger: Ledger) -> bool:
    return all(ledger.within_quota(c) for c in ledger.shares)


# --------------------------------------------------------------------------- worked examples


def test_six_persons_split_3_2_1_and_every_step_within_quota() -> None:
    ledger = Ledger.new(THIRDS)
    for _ in range(6):
        ledger.take(1)
        assert all_within_quota(ledger)
    assert ledger.received == {"A": 3, "B": 2, "C": 1}
    assert ledger.total == 6
    assert ledger.max_abs_deviation() == 0
    assert [b.total_after for b in ledger.history] == [1, 2, 3, 4, 5, 6]


def test_fair_share_deviation_and_quota_definitions() -> None:
    ledger = Ledger.new(THIRDS, received={"A": 2, "B": 0, "C": 1})
    assert ledger.total == 3
    assert ledger.fair_share("A") == Fraction(3, 2)
    assert ledger.deviation("A") == Fraction(1, 2)  # above its share
    assert ledger.deviation("B") == -1  # below: floor(1) = 1 > 0
    assert ledger.within_quota("A")
    assert not ledger.within_quota("B")
    assert ledger.max_abs_deviation() == 1
    with pytest.raises(UnknownStateError, match="'ZZ' is not in this ledger's key"):
        ledger.fair_share("ZZ")


def test_still_look_ahead_keeps_lower_quota_where_greedy_does_not() -> None:
    """Largest deficit with only the upper-quota test drops D below its lower quota at N = 56."""
    weights = {"A": 35, "B": 6, "C": 35, "D": 37, "E": 1, "Fraction": 1}
    shares = {c: Fraction(w, 115) for c, w in weights.items()}

    received = dict.fromkeys(shares, 0)
    greedy_ok = True
    for h in range(60):
        upper = [c for c in sorted(shares) if received[c] < shares[c] * (h + 1)]
        pick = max(upper, key=lambda c: (shares[c] * (h + 1) - received[c], -ord(c[0])))
        received[pick] += 1
        greedy_ok &= all(
            floor(shares[c] * (h + 1)) <= received[c] <= ceil(shares[c] * (h + 1)) for c in shares
        )
    assert not greedy_ok

    for seed in range(4):
        ledger = Ledger.new(shares, seed=seed)
        for _ in range(240):
            ledger.take(1)
            assert all_within_quota(ledger)


def test_state_above_its_share_receives_nothing_until_the_others_catch_up() -> None:
    ledger = Ledger.new({"A": Fraction(1, 2), "B": Fraction(1, 2)}, received={"A": 10})
    assert not ledger.within_quota("A")
    result = ledger.take(10)
    assert result.placed == {"A": 0, "B": 10}
    assert ledger.received == {"A": 10, "B": 10}
    ledger.take(4)
    assert ledger.received == {"A": 12, "B": 12}


def test_state_below_its_lower_quota_is_served_first() -> None:
    ledger = Ledger.new(THIRDS, received={"A": 0, "B": 6, "C": 0})
    ledger.take(3)
    assert ledger.received == {"A": 3, "B": 6, "C": 0}
    ledger.take(9)
    assert ledger.received == {"A": 9, "B": 6, "C": 3}
    assert all_within_quota(ledger)


def test_within_quota_is_not_enough_quota_feasible_says_when_the_guarantee_holds() -> None:
    """(0, 0, 1, 1) is within quota at N = 2, yet at N = 3 A or B must fall below floor(1.2)."""
    shares = {"A": Fraction(2, 5), "B": Fraction(2, 5), "C": Fraction(1, 10), "D": Fraction(1, 10)}
    ledger = Ledger.new(shares, received={"C": 1, "D": 1})
    assert all_within_quota(ledger)
    assert not ledger.quota_feasible()
    ledger.take(1)
    assert not all_within_quota(ledger)
    ledger.take(3)  # by N = 6, A and B have caught up
    assert ledger.received == {"A": 2, "B": 2, "C": 1, "D": 1}
    assert all_within_quota(ledger)
    assert ledger.quota_feasible()
    assert Ledger.new(shares).quota_feasible()


def test_batch_size_invariance_60_plus_40_equals_100() -> None:
    one = Ledger.new(population_key(), seed=3)
    one.take(100)
    two = Ledger.new(population_key(), seed=3)
    two.take(60)
    two.take(40)
    assert one.received == two.received
    assert one.total == two.total == 100


@pytest.mark.slow
def test_160000_persons_over_32_states_with_liechtenstein() -> None:
    shares = population_key()
    assert Fraction(6, 100_000) < shares["LI"] < Fraction(8, 100_000)
    ledger = Ledger.new(shares, seed=2015)
    for _ in range(16):
        ledger.take(10_000)
        assert all_within_quota(ledger)
    assert ledger.total == 160_000
    assert ledger.received["LI"] == 11  # 160000 * 0.0000708 = 11.3
    assert ledger.max_abs_deviation() < 1
    assert ledger.quota_feasible()


# --------------------------------------------------------------------------- ties


def test_ties_are_broken_by_the_recorded_seeded_lottery() -> None:
    shares = {"A": Fraction(1, 3), "B": Fraction(1, 3), "C": Fraction(1, 3)}
    for seed in range(6):
        ledger = Ledger.new(shares, seed=seed)
        assert ledger.tie_order == lottery_order(["A", "B", "C"], seed)
        ledger.take(1)
        assert ledger.received[ledger.tie_order[0]] == 1
        ledger.take(1)
        assert ledger.received[ledger.tie_order[1]] == 1
        assert ledger.to_dict()["tie_order"] == list(ledger.tie_order)
    orders = {Ledger.new(shares, seed=s).tie_order for s in range(20)}
    assert len(orders) > 1


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    paths = []
    for i in range(2):
        ledger = Ledger.new(population_key(), seed=11, key={"name": "population", "year": 2015})
        ledger.take(500)
        ledger.record({"DE": [4, 1], "LI": [2]})
        ledger.take(77, caps={"FR": 3})
        paths.append(tmp_path / f"l{i}.json")
        save_ledger(ledger, paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()


# --------------------------------------------------------------------------- caps, overflow


def test_batch_caps_and_overflow() -> None:
    ledger = Ledger.new({"A": Fraction(1, 2), "B": Fraction(1, 2)})
    result = ledger.take(5, caps={"A": 1, "B": 1})
    assert result.placed == {"A": 1, "B": 1}
    assert result.overflow == 3
    assert result.persons == 5
    assert result.total_after == ledger.total == 2
    assert result.caps == {"A": 1, "B": 1}
    # batch caps bind only that batch
    assert ledger.take(2).placed == {"A": 1, "B": 1}


def test_a_full_state_sends_persons_to_states_above_their_share() -> None:
    ledger = Ledger.new({"A": Fraction(1, 2), "B": Fraction(1, 2)}, caps={"A": 1})
    result = ledger.take(4)
    assert result.placed == {"A": 1, "B": 3}
    assert result.overflow == 0
    assert ledger.caps == {"A": 0}
    ledger.set_caps(None)
    assert ledger.take(2).placed == {"A": 2, "B": 0}


def test_ledger_caps_are_used_up_across_batches() -> None:
    ledger = Ledger.new(THIRDS, caps={"A": 2, "B": 2, "C": 2})
    first = ledger.take(4)
    second = ledger.take(4)
    assert sum(first.placed.values()) + sum(second.placed.values()) == 6
    assert second.overflow == 2
    assert ledger.caps == {"A": 0, "B": 0, "C": 0}
    assert ledger.take(3).overflow == 3


def test_zero_share_state_never_receives_from_take() -> None:
    ledger = Ledger.new({"A": Fraction(1), "Z": Fraction(0)}, caps={"A": 2})
    result = ledger.take(5)
    assert result.placed == {"A": 2, "Z": 0}
    assert result.overflow == 3


# --------------------------------------------------------------------------- record (cases)


def test_record_books_whole_cases_and_tracks_the_largest_unit() -> None:
    ledger = Ledger.new(THIRDS, caps={"C": 4})
    assert ledger.largest_unit == 0
    result = ledger.record({"A": [5, 1], "C": [3]})
    assert result.kind == "record"
    assert result.placed == {"A": 6, "B": 0, "C": 3}
    assert result.units == {"A": (5, 1), "C": (3,)}
    assert ledger.total == 9
    assert ledger.largest_unit == 5
    assert ledger.caps == {"C": 1}
    assert ledger.max_abs_deviation() == 3  # B: 0 against 3
    ledger.take(9)
    assert ledger.received == {"A": 9, "B": 6, "C": 3}
    assert ledger.largest_unit == 5
    assert ledger.max_abs_deviation() <= ledger.largest_unit


def test_record_rejects_bad_input_and_changes_nothing() -> None:
    ledger = Ledger.new(THIRDS, caps={"C": 2})
    before = ledger.to_dict()
    with pytest.raises(InfeasibleError, match="C: 3 persons booked but only 2 places free"):
        ledger.record({"A": [1], "C": [2, 1]})
    with pytest.raises(InputError, match="case size 0 is not a positive whole number"):
        ledger.record({"A": [0]})
    with pytest.raises(InputError, match="expected a list of case sizes"):
        ledger.record({"A": "12"})  # type: ignore[dict-item]
    with pytest.raises(UnknownStateError):
        ledger.record({"Q": [1]})
    assert ledger.to_dict() == before


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ({"A": Fraction(1, 2), "B": Fraction(1, 3)}, r"shares sum to 5/6 .* not exactly 1"),
        ({"A": Fraction(3, 2), "B": Fraction(-1, 2)}, "is negative"),
        (
            {"A": 0.5, "B": Fraction(1, 2)},
            r"is a float; give an exact share such as Fraction\('0.5'\)",
        ),
        ({}, "non-empty mapping"),
        ({"": Fraction(1)}, "must be a non-empty string"),
        ({"A": "1"}, "expected a Fraction"),
    ],
)
def test_bad_shares_are_rejected(shares: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Ledger.new(shares)  # type: ignore[arg-type]


def test_bad_counts_are_rejected() -> None:
    with pytest.raises(UnknownStateError, match="received: state 'X' is not in the key"):
        Ledger.new(THIRDS, received={"X": 1})
    with pytest.raises(InputError, match=r"caps\['A'\]: must not be negative"):
        Ledger.new(THIRDS, caps={"A": -1})
    with pytest.raises(InputError, match="persons: must not be negative"):
        Ledger.new(THIRDS).take(-1)
    with pytest.raises(InputError, match="persons: expected a whole number"):
        Ledger.new(THIRDS).take(True)
    with pytest.raises(InputError, match="key: metadata must be plain JSON data"):
        Ledger.new(THIRDS, key={"when": object()})


# --------------------------------------------------------------------------- persistence


def make_ledger() -> Ledger:
    ledger = Ledger.new(THIRDS, seed=5, received={"B": 1}, caps={"C": 10}, key={"name": "demo"})
    ledger.take(7, caps={"A": 2})
    ledger.record({"B": [3, 1]})
    ledger.take(3)
    return ledger


def test_save_load_round_trip(tmp_path: Path) -> None:
    ledger = make_ledger()
    path = tmp_path / "ledger.json"
    save_ledger(ledger, path)
    loaded = load_ledger(path)
    assert loaded.to_dict() == ledger.to_dict()
    assert loaded.history == ledger.history
    assert loaded.shares == THIRDS
    assert loaded.key == {"name": "demo"}
    # the loaded ledger carries on exactly like the original
    assert loaded.take(13) == ledger.take(13)
    assert loaded.to_json() == ledger.to_json()


def test_file_format(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    save_ledger(make_ledger(), path)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    data = json.loads(text)
    assert data["format"] == "fairshare-ledger"
    assert data["version"] == 1
    assert data["states"]["B"] == {
        "share": "1/3",
        "share_float": 1 / 3,
        "opening": 1,
        "received": data["states"]["B"]["received"],
        "cap": None,
    }
    assert data["total"] == sum(s["received"] for s in data["states"].values())
    assert [h["kind"] for h in data["history"]] == ["take", "record", "take"]
    assert data["history"][0]["caps"] == {"A": 2, "C": 10}
    assert data["history"][1]["units"] == {"B": [3, 1]}


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger.json"
    save_ledger(Ledger.new(THIRDS), path)
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_ledger(make_ledger(), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.json"]


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    save_ledger(Ledger.new(THIRDS), path)
    ledger = make_ledger()
    save_ledger(ledger, path)
    assert load_ledger(path).to_dict() == ledger.to_dict()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.json"]


def corrupt(tmp_path: Path, edit: object) -> Path:
    data = make_ledger().to_dict()
    assert callable(edit)
    edit(data)
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _set(path: tuple[str | int, ...], value: object) -> object:
    def edit(data: dict[str, object]) -> None:
        target: object = data
        for part in path[:-1]:
            target = target[part]  # type: ignore[index]
        target[path[-1]] = value  # type: ignore[index]

    return edit


def _edits(*edits: object) -> object:
    def edit(data: dict[str, object]) -> None:
        for one in edits:
            assert callable(one)
            one(data)

    return edit


def _drop(name: str) -> object:
    def edit(data: dict[str, object]) -> None:
        del data[name]

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set(("total",), 99), r"ledger.json: received totals 15 but total says 99$"),
        (_set(("format",), "other"), "not a fairshare ledger"),
        (_set(("version",), 2), "ledger version 2 is not supported"),
        (_drop("history"), "history is missing"),
        (_set(("states", "A", "share"), "0.5"), r"states.A.share must be an exact fraction"),
        (_set(("states", "A", "share_float"), 0.4), "share_float 0.4 disagrees with share 1/2"),
        (
            _edits(
                _set(("states", "A", "share"), "2/3"), _set(("states", "A", "share_float"), 2 / 3)
            ),
            r"shares sum to 7/6",
        ),
        (_set(("states", "A", "received"), -1), r"states.A.received must be a whole number"),
        (_set(("seed",), 6), "tie_order does not match the lottery drawn from seed 6"),
        (_set(("history", 1, "batch"), 7), r"history\[1\].batch is 7, expected 2"),
        (_set(("history", 0, "overflow"), 1), r"history\[0\].placed \(7\) plus overflow \(1\)"),
        (_set(("history", 2, "total_after"), 5), r"total_after says 5 but the batches add up"),
        (_set(("history", 1, "units"), {"B": [3]}), r"units.B add up to 3, placed says 4"),
        (_set(("largest_unit",), 1), "has a case larger than largest_unit"),
        (
            _edits(_set(("states", "C", "received"), 9), _set(("total",), 22)),
            r"states.C: opening plus history gives 2, received says 9",
        ),
        (_set(("key",), []), "key must be an object"),
    ],
)
def test_corrupt_files_are_rejected_with_a_clear_message(
    tmp_path: Path, edit: object, message: str
) -> None:
    path = corrupt(tmp_path, edit)
    with pytest.raises(InputError, match=message) as info:
        load_ledger(path)
    assert str(info.value).startswith(f"{path}: ")


def test_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    with pytest.raises(InputError, match="no such ledger file"):
        load_ledger(path)
    path.write_text('{"format": "fairshare-ledger", ', encoding="utf-8")
    with pytest.raises(InputError, match=r"not valid JSON \(line 1"):
        load_ledger(path)
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON object"):
        load_ledger(path)
