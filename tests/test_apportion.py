"""Worked examples, paradoxes, bad input, ties and bounds for fairshare.apportion."""

from __future__ import annotations

import itertools
import time
from fractions import Fraction

import pytest
from apportionment import methods as lib

from fairshare.apportion import (
    METHODS,
    Apportionment,
    TieDraw,
    apportion,
    resolve_method,
)
from fairshare.errors import InfeasibleError, InputError, TieError
from strategies import ALL_METHODS


def seats_of(weights: dict[str, int | Fraction], h: int, method: str, **kw: object) -> list[int]:
    return list(apportion(weights, h, method, **kw).seats.values())  # type: ignore[arg-type]


# --- names -------------------------------------------------------------------------------------


def test_every_alias_resolves_to_a_canonical_name() -> None:
    assert set(METHODS.values()) == set(ALL_METHODS)
    assert resolve_method("largest-remainder") == "hamilton"
    assert resolve_method("Sainte-Lague") == "webster"
    assert resolve_method("dhondt") == "jefferson"
    assert resolve_method(" HUNTINGTON_HILL ") == "huntington-hill"


def test_unknown_method_lists_the_accepted_names() -> None:
    with pytest.raises(InputError, match=r"unknown apportionment method 'borda'.*hamilton"):
        resolve_method("borda")
    with pytest.raises(InputError, match="webster"):
        apportion({"A": 1}, 1, "borda")


# --- worked examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "weights", "seats", "expected"),
    [
        # Weights 9, 5, 3, 7 (total 24): quotas at 8 seats 3, 5/3, 1, 7/3.
        ("hamilton", {"A": 9, "B": 5, "C": 3, "D": 7}, 8, [3, 2, 1, 2]),
        # Jefferson priorities 9, 7, 5, 9/2, 7/2, 3 (A), 3 (C): the 7th seat ties at 3.
        ("jefferson", {"A": 9, "B": 5, "C": 3, "D": 7}, 5, [2, 1, 0, 2]),
        ("webster", {"A": 9, "B": 5, "C": 3, "D": 7}, 8, [3, 2, 1, 2]),
        ("adams", {"A": 9, "B": 5, "C": 3, "D": 7}, 8, [3, 2, 1, 2]),
        ("huntington-hill", {"A": 9, "B": 5, "C": 3, "D": 7}, 8, [3, 2, 1, 2]),
        ("dean", {"A": 9, "B": 5, "C": 3, "D": 7}, 8, [3, 2, 1, 2]),
        ("quota", {"A": 9, "B": 5, "C": 3, "D": 7}, 8, [3, 2, 1, 2]),
        # Jefferson favours the large (91/10 > 5), Adams the small (everyone gets a first seat).
        ("jefferson", {"A": 91, "B": 5, "C": 4}, 10, [10, 0, 0]),
        ("adams", {"A": 91, "B": 5, "C": 4}, 10, [8, 1, 1]),
        ("hamilton", {"A": 91, "B": 5, "C": 4}, 10, [9, 1, 0]),
        ("quota", {"A": 91, "B": 5, "C": 4}, 10, [10, 0, 0]),
        ("jefferson", {"A": 71, "B": 10, "C": 10, "D": 9}, 10, [7, 1, 1, 1]),
        ("quota", {"A": 71, "B": 10, "C": 10, "D": 9}, 10, [7, 1, 1, 1]),
    ],
)
def test_worked_examples(
    method: str, weights: dict[str, int | Fraction], seats: int, expected: list[int]
) -> None:
    assert seats_of(weights, seats, method) == expected


def test_jefferson_violates_upper_quota_where_the_quota_method_does_not() -> None:
    # One unit of weight 60 and 40 of weight 1 share 20 seats: the big unit's quota is 12.
    weights: dict[str, int | Fraction] = {"big": 60, **{f"s{i:02d}": 1 for i in range(40)}}
    jefferson = apportion(weights, 20, "jefferson", seed=1)
    quota = apportion(weights, 20, "quota", seed=1)
    assert jefferson.quotas["big"] == 12  # 60/100 * 20
    assert jefferson.seats["big"] == 20
    assert not jefferson.within_quota()
    assert quota.seats["big"] == 12
    assert quota.within_quota()


def test_fraction_weights_and_quotas_are_exact() -> None:
    r = apportion({"A": Fraction(1, 3), "B": Fraction(1, 6), "C": Fraction(1, 2)}, 7)
    assert r.quotas == {"A": Fraction(7, 3), "B": Fraction(7, 6), "C": Fraction(7, 2)}
    # remainders 1/3, 1/6, 1/2 -> the extra seat goes to C
    assert r.seats == {"A": 2, "B": 1, "C": 4}
    assert r.total == 7
    assert r.method == "hamilton"
    assert r.ties == ()


def test_huntington_hill_compares_exactly_not_in_floating_point() -> None:
    # After first seats: A 11^2/2 = 60.5 beats B 9^2/2 = 40.5; then B 40.5 beats A 121/6.
    assert seats_of({"A": 11, "B": 9}, 4, "huntington-hill") == [2, 2]
    # A exact tie: with 1 and 8 seats, 1/sqrt(1*2) == 6/sqrt(8*9), as 1^2/2 == 6^2/72.
    with pytest.raises(TieError, match=r"A, B are exactly tied \(squared priority 1/2\)"):
        apportion({"A": 1, "B": 6}, 10, "huntington-hill")
    r = apportion({"A": 1, "B": 6}, 10, "huntington-hill", seed=0)
    assert r.ties[0].seat == 10
    assert sorted(r.seats.values()) in ([1, 9], [2, 8])


def test_dean_divisor() -> None:
    # Dean: d(1) = 4/3, d(2) = 12/5. Weights 10 and 7, 3 seats: first seats to both; then
    # 10/(4/3) = 7.5 vs 7/(4/3) = 5.25 -> A.
    assert seats_of({"A": 10, "B": 7}, 3, "dean") == [2, 1]
    # 4 seats: A 10/(12/5) = 25/6 = 4.17 vs B 5.25 -> B
    assert seats_of({"A": 10, "B": 7}, 4, "dean") == [2, 2]


def test_zero_divisor_methods_give_first_seats_by_weight() -> None:
    w: dict[str, int | Fraction] = {"A": 1, "B": 5, "C": 3, "D": 0}
    for method in ("adams", "dean", "huntington-hill"):
        assert seats_of(w, 1, method) == [0, 1, 0, 0]
        assert seats_of(w, 2, method) == [0, 1, 1, 0]
        assert seats_of(w, 3, method) == [1, 1, 1, 0]
        assert seats_of(w, 4, method)[3] == 0


def test_zero_seats_and_zero_weights() -> None:
    for method in ALL_METHODS:
        assert seats_of({"A": 1, "B": 2}, 0, method) == [0, 0]
        assert seats_of({"A": 0, "B": 2}, 5, method) == [0, 5]
    assert apportion({}, 0).seats == {}


def test_output_keeps_input_order() -> None:
    r = apportion({"zeta": 1, "alpha": 2, "mid": 3}, 6, "webster")
    assert list(r.seats) == ["zeta", "alpha", "mid"]
    assert list(r.quotas) == ["zeta", "alpha", "mid"]


# --- paradoxes --------------------------------------------------------------------------------


def test_alabama_paradox_of_hamilton() -> None:
    w: dict[str, int | Fraction] = {"A": 6, "B": 6, "C": 2}
    assert seats_of(w, 10, "hamilton") == [4, 4, 2]
    assert seats_of(w, 11, "hamilton") == [5, 5, 1]  # C loses a seat as the house grows
    # The quota method is house monotone: it never gives C a second seat on the way to 11.
    # At 10, A and B tie (priority 6/5) for the 10th seat; at 11 both get one, so the tie
    # decides nothing and needs no seed.
    with pytest.raises(TieError, match=r"seat 10: A, B are exactly tied \(priority 6/5\)"):
        apportion(w, 10, "quota")
    assert sorted(seats_of(w, 10, "quota", seed=1)) == [1, 4, 5]
    r = apportion(w, 11, "quota")
    assert list(r.seats.values()) == [5, 5, 1]
    assert r.ties == ()


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": {"A": -1, "B": 2}, "seats": 3}, r"unit 'A': weight -1 is negative"),
        ({"weights": {"A": 1.5}, "seats": 3}, r"unit 'A': weight 1.5 is not an int or a Fraction"),
        ({"weights": {"A": True}, "seats": 3}, r"unit 'A': weight True"),
        ({"weights": {"A": 1}, "seats": -2}, r"number of seats is -2; it must be 0 or more"),
        ({"weights": {"A": 1}, "seats": 2.0}, r"number of seats 2.0 is not a whole number"),
        (
            {"weights": {"A": 1}, "seats": 2, "minimum": {"A": -1}},
            r"unit 'A': minimum -1 is negative",
        ),
        (
            {"weights": {"A": 1}, "seats": 2, "minimum": {"A": 3}, "maximum": {"A": 2}},
            r"unit 'A': minimum 3 is above its maximum 2",
        ),
        (
            {"weights": {"A": 1}, "seats": 2, "maximum": {"B": 2}},
            r"maximum given for unit 'B', which has no weight",
        ),
        ({"weights": {"A": 1}, "seats": 2, "seed": "x"}, r"seed 'x' is not a whole number"),
    ],
)
def test_bad_input_says_what_to_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        apportion(**kwargs)  # type: ignore[arg-type]


def test_infeasible_minimums_say_by_how_much() -> None:
    with pytest.raises(InfeasibleError, match=r"minimums add up to 7 seats, 2 more than the 5"):
        apportion({"A": 1, "B": 1}, 5, minimum={"A": 3, "B": 4})


def test_infeasible_maximums_say_by_how_much() -> None:
    with pytest.raises(InfeasibleError, match=r"at most 4 seats, 6 fewer than the 10"):
        apportion({"A": 1, "B": 1}, 10, maximum={"A": 1, "B": 3})
    with pytest.raises(InfeasibleError, match=r"weight 0 .*: Z"):
        apportion({"A": 1, "Z": 0}, 3, maximum={"A": 2})
    with pytest.raises(InfeasibleError, match="at most 0 seats"):
        apportion({"A": 0}, 1)
    with pytest.raises(InfeasibleError):
        apportion({}, 1)


# --- bounds -------------------------------------------------------------------------------------


def test_minimum_and_maximum_for_every_method() -> None:
    w: dict[str, int | Fraction] = {"big": 90, "mid": 9, "small": 1}
    for method in ALL_METHODS:
        r = apportion(w, 10, method, minimum={"small": 1}, maximum={"big": 7})
        assert r.seats["small"] >= 1
        assert r.seats["big"] == 7
        assert sum(r.seats.values()) == 10


def test_bounded_quota_is_water_filled() -> None:
    # Without bounds the quotas are 9, 0.9, 0.1. Cap big at 7: the 3 other seats split 9:1
    # -> 2.7 and 0.3; a minimum of 1 for small then leaves 2 for mid.
    w: dict[str, int | Fraction] = {"big": 90, "mid": 9, "small": 1}
    r = apportion(w, 10, maximum={"big": 7})
    assert r.quotas == {"big": 7, "mid": Fraction(27, 10), "small": Fraction(3, 10)}
    assert r.seats == {"big": 7, "mid": 3, "small": 0}
    r = apportion(w, 10, maximum={"big": 7}, minimum={"small": 1})
    assert r.quotas == {"big": 7, "mid": 2, "small": 1}
    assert r.seats == {"big": 7, "mid": 2, "small": 1}
    assert r.within_quota()


def test_clamped_divisor_method_starts_from_the_minimums() -> None:
    # Jefferson with A capped at 2: B and C share the rest by priority.
    r = apportion({"A": 100, "B": 30, "C": 21}, 6, "jefferson", maximum={"A": 2})
    assert r.seats == {"A": 2, "B": 2, "C": 2}  # 100, 50, then B 30, C 21, B 15, C 10.5
    r = apportion({"A": 100, "B": 30, "C": 21}, 6, "jefferson", minimum={"C": 3})
    assert r.seats == {"A": 3, "B": 0, "C": 3}  # C starts at 3; A 100, 50, 33.3 beat B's 30


def test_zero_weight_units_get_only_their_minimum() -> None:
    for method in ALL_METHODS:
        r = apportion({"A": 0, "B": 3, "C": 1}, 9, method, minimum={"A": 2}, seed=3)
        assert r.seats["A"] == 2
        assert sum(r.seats.values()) == 9


# --- ties ----------------------------------------------------------------------------------------


def test_apportionment_library_is_wrong_on_a_hamilton_tie() -> None:
    # Quotas 0.6, 0.6, 0.8: the 4 has the largest remainder and must get a seat; the two 3s
    # are tied for the other one.
    assert lib.compute("largest_remainder", [3, 3, 4], 2, fractions=True) == [1, 1, 0]
    with pytest.raises(TieError, match=r"A, B are exactly tied \(largest remainder 3/5\)"):
        apportion({"A": 3, "B": 3, "C": 4}, 2)
    with pytest.raises(TieError, match="pass --seed N to break it by a recorded lottery"):
        apportion({"A": 3, "B": 3, "C": 4}, 2)
    r = apportion({"A": 3, "B": 3, "C": 4}, 2, seed=11)
    assert r.seats["C"] == 1
    assert r.seats["A"] + r.seats["B"] == 1
    (draw,) = r.ties
    assert draw.tied == ("A", "B")
    assert draw.winners in {("A",), ("B",)}
    assert r.seats[draw.winners[0]] == 1
    assert draw.rule == "largest remainder 3/5"
    assert draw.seat == 2
    assert draw.seed == 11


def test_a_tie_that_decides_nothing_needs_no_seed() -> None:
    # Both tied units get a seat: no lottery.
    for method in ALL_METHODS:
        r = apportion({"A": 3, "B": 3, "C": 4}, 10, method)
        assert r.ties == ()
        assert r.seats["A"] == r.seats["B"]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_tie_errors_name_units_and_value(method: str) -> None:
    with pytest.raises(TieError, match=r"A, B are exactly tied \(.*\) for 1 seat; pass --seed N"):
        apportion({"B": 5, "A": 5}, 1, method)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_seeded_lottery_is_recorded_and_deterministic(method: str) -> None:
    w: dict[str, int | Fraction] = {"D": 2, "B": 2, "A": 2, "C": 2, "E": 1}
    results = [apportion(w, 6, method, seed=42) for _ in range(3)]
    assert results[0] == results[1] == results[2]
    assert repr(results[0]) == repr(results[2])
    r = results[0]
    assert r.seed == 42
    assert len(r.ties) >= 1
    draw = r.ties[0]
    assert draw.tied == tuple(sorted(draw.tied))
    assert set(draw.winners) <= set(draw.tied)
    assert draw.to_dict() == {
        "seat": draw.seat,
        "rule": draw.rule,
        "tied": list(draw.tied),
        "winners": list(draw.winners),
        "seed": 42,
    }
    assert sum(r.seats.values()) == 6
    # different seeds can give different winners, but always a valid apportionment
    winners = {apportion(w, 6, method, seed=s).ties[0].winners for s in range(30)}
    assert len(winners) > 1


@pytest.mark.parametrize("method", ALL_METHODS)
def test_input_order_never_changes_the_result(method: str) -> None:
    w: dict[str, int | Fraction] = {"D": 2, "B": 2, "A": 2, "C": 2, "E": 1, "F": 5}
    base = apportion(w, 7, method, seed=5)
    for perm in itertools.permutations(w):
        r = apportion({k: w[k] for k in perm}, 7, method, seed=5)
        assert r.seats == base.seats  # dict equality ignores order
        assert list(r.seats) == list(perm)
        assert r.ties == base.ties


def test_tie_draw_is_a_frozen_record() -> None:
    d = TieDraw(seat=3, rule="priority 5/2", tied=("A", "B"), winners=("B",), seed=1)
    with pytest.raises(AttributeError):
        d.seat = 4  # type: ignore[misc]
    r = apportion({"A": 1}, 1)
    assert isinstance(r, Apportionment)


# --- speed ---------------------------------------------------------------------------------------


def _eu_like_weights(n: int) -> dict[str, int | Fraction]:
    # deterministic, tie-free-ish weights of very different sizes
    return {f"S{i:04d}": 300_000 + (i * 7_919_113) % 83_000_000 for i in range(n)}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_28_units_160000_seats_is_fast(method: str) -> None:
    w = _eu_like_weights(28)
    start = time.perf_counter()
    r = apportion(w, 160_000, method, seed=1)
    elapsed = time.perf_counter() - start
    assert sum(r.seats.values()) == 160_000
    assert elapsed < (0.5 if method == "quota" else 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("method", ALL_METHODS)
def test_1000_units_a_million_seats(method: str) -> None:
    w = _eu_like_weights(1000)
    start = time.perf_counter()
    r = apportion(w, 1_000_000, method, seed=1)
    elapsed = time.perf_counter() - start
    assert sum(r.seats.values()) == 1_000_000
    assert elapsed < (5.0 if method == "quota" else 2.0)
