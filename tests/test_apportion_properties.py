"""Invariants of fairshare.apportion, checked with Hypothesis, plus cross-checks against
naive reference implementations and against the ``apportionment`` library."""

from __future__ import annotations

from fractions import Fraction

import pytest
from apportionment import methods as lib
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fairshare.apportion import apportion
from fairshare.errors import TieError
from strategies import ALL_METHODS, DIVISOR_METHODS, bounded_problem, int_weights, weights

SETTINGS = settings(max_examples=200, deadline=None)

LIBRARY_NAMES = {
    "hamilton": "largest_remainder",
    "jefferson": "dhondt",
    "webster": "saintelague",
    "huntington-hill": "huntington",
    "adams": "adams",
    "dean": "dean",
    "quota": "quota",
}


def no_tie(w: dict[str, int | Fraction], h: int, method: str, **kw: object) -> list[int]:
    """Our seats, skipping the example (assume) if a tie decides seats."""
    try:
        r = apportion(w, h, method, **kw)  # type: ignore[arg-type]
    except TieError:
        assume(False)
        raise AssertionError("unreachable") from None
    assert r.ties == ()
    return list(r.seats.values())


# --- naive reference implementations: one seat at a time, exact, obviously right -----------------


def _priority(method: str, v: Fraction, a: int) -> tuple[int, Fraction]:
    d = {
        "jefferson": Fraction(a + 1),
        "webster": Fraction(2 * a + 1, 2),
        "adams": Fraction(a),
        "dean": Fraction(2 * a * (a + 1), 2 * a + 1),
        "huntington-hill": Fraction(a * (a + 1)),  # d(a)^2
    }[method]
    if d == 0:
        return (1, v)  # "infinite", larger weight first
    return (0, v * v / d if method == "huntington-hill" else v / d)


def naive_divisor(
    method: str, w: list[Fraction], h: int, lo: list[int], hi: list[int | None]
) -> list[int] | None:
    """Start at the minimums, give seats by priority; None if a tie decides seats."""
    a = list(lo)
    left = h - sum(a)
    while left > 0:
        cap = [h + 1 if x is None else x for x in hi]
        open_ = [i for i in range(len(w)) if w[i] > 0 and a[i] < cap[i]]
        best = max(_priority(method, w[i], a[i]) for i in open_)
        top = [i for i in open_ if _priority(method, w[i], a[i]) == best]
        if len(top) > left:
            return None
        for i in top:
            a[i] += 1
        left -= len(top)
    return a


def naive_quota(w: list[Fraction], h: int, reverse: bool) -> list[int]:
    """Balinski-Young quota method, unbounded, ties broken by index (or reversed index)."""
    total = sum(w)
    a = [0] * len(w)
    for house in range(1, h + 1):
        elig = [i for i in range(len(w)) if a[i] < w[i] * house / total]
        order = sorted(elig, reverse=reverse)
        best = max(order, key=lambda i: w[i] / (a[i] + 1))  # first maximum in `order`
        a[best] += 1
    return a


def naive_hamilton(w: list[Fraction], h: int) -> list[int] | None:
    q = [x * h / sum(w) for x in w]
    a = [int(x) for x in q]
    rem = sorted((x - int(x) for x in q), reverse=True)
    left = h - sum(a)
    if left == 0:
        return a
    cut = rem[left - 1]
    if left < len(rem) and rem[left] == cut:
        return None
    return [ai + (1 if x - ai >= cut and x != ai else 0) for ai, x in zip(a, q, strict=True)]


# --- invariants -----------------------------------------------------------------------------------


@SETTINGS
@given(w=weights(), h=st.integers(0, 60), method=st.sampled_from(ALL_METHODS))
def test_seats_always_add_up(w: dict[str, int | Fraction], h: int, method: str) -> None:
    r = apportion(w, h, method, seed=h)
    assert sum(r.seats.values()) == h
    assert sum(r.quotas.values()) == h
    assert all(s >= 0 for s in r.seats.values())
    assert all(r.seats[u] == 0 for u, v in w.items() if v == 0)


@SETTINGS
@given(w=weights(), h=st.integers(0, 80), method=st.sampled_from(["hamilton", "quota"]))
def test_hamilton_and_quota_method_stay_within_quota(
    w: dict[str, int | Fraction], h: int, method: str
) -> None:
    assert apportion(w, h, method, seed=1).within_quota()


@SETTINGS
@given(w=int_weights(), h=st.integers(0, 50), method=st.sampled_from([*DIVISOR_METHODS, "quota"]))
def test_divisor_and_quota_methods_are_house_monotone(
    w: dict[str, int | Fraction], h: int, method: str
) -> None:
    small = no_tie(w, h, method)
    large = no_tie(w, h + 1, method)
    assert all(x <= y for x, y in zip(small, large, strict=True))


@SETTINGS
@given(problem=bounded_problem(), method=st.sampled_from(ALL_METHODS))
def test_minimums_and_maximums_always_hold(
    problem: tuple[dict[str, int | Fraction], int, dict[str, int], dict[str, int]], method: str
) -> None:
    w, h, minimum, maximum = problem
    r = apportion(w, h, method, minimum=minimum, maximum=maximum, seed=0)
    assert sum(r.seats.values()) == h
    for u, s in r.seats.items():
        assert minimum.get(u, 0) <= s
        assert u not in maximum or s <= maximum[u]
        assert minimum.get(u, 0) <= r.quotas[u]
        assert u not in maximum or r.quotas[u] <= maximum[u]
        if w[u] == 0:
            assert s == minimum.get(u, 0)
    if method == "hamilton":
        assert r.within_quota()


@SETTINGS
@given(w=weights(), h=st.integers(0, 40), method=st.sampled_from(ALL_METHODS), seed=st.integers())
def test_input_order_never_matters(
    w: dict[str, int | Fraction], h: int, method: str, seed: int
) -> None:
    base = apportion(w, h, method, seed=seed)
    rev = apportion(dict(reversed(w.items())), h, method, seed=seed)
    assert rev.seats == base.seats
    assert rev.ties == base.ties
    assert list(rev.seats) == list(reversed(list(w)))


# --- against naive references ---------------------------------------------------------------------


@SETTINGS
@given(problem=bounded_problem(), method=st.sampled_from(DIVISOR_METHODS))
def test_divisor_methods_match_seat_by_seat_reference(
    problem: tuple[dict[str, int | Fraction], int, dict[str, int], dict[str, int]], method: str
) -> None:
    w, h, minimum, maximum = problem
    names = list(w)
    expected = naive_divisor(
        method,
        [Fraction(w[n]) for n in names],
        h,
        [minimum.get(n, 0) for n in names],
        [maximum.get(n) for n in names],
    )
    if expected is None:
        with pytest.raises(TieError):
            apportion(w, h, method, minimum=minimum, maximum=maximum)
    else:
        r = apportion(w, h, method, minimum=minimum, maximum=maximum)
        assert list(r.seats.values()) == expected


@SETTINGS
@given(w=weights(), h=st.integers(0, 40))
def test_hamilton_matches_reference(w: dict[str, int | Fraction], h: int) -> None:
    expected = naive_hamilton([Fraction(v) for v in w.values()], h)
    if expected is None:
        with pytest.raises(TieError):
            apportion(w, h)
    else:
        assert list(apportion(w, h).seats.values()) == expected


@SETTINGS
@given(w=int_weights(max_weight=12), h=st.integers(0, 40))
def test_quota_method_matches_reference_and_ties_are_detected_exactly(
    w: dict[str, int | Fraction], h: int
) -> None:
    # Small weights make many ties. When we report no tie, breaking ties either way in the
    # reference must give our answer; when we report one, the two ways must differ.
    forward = naive_quota([Fraction(v) for v in w.values()], h, reverse=False)
    backward = naive_quota([Fraction(v) for v in w.values()], h, reverse=True)
    try:
        ours = list(apportion(w, h, "quota").seats.values())
    except TieError:
        assert forward != backward
        r = apportion(w, h, "quota", seed=h)
        assert r.ties
        assert r.within_quota()
    else:
        assert ours == forward == backward


@SETTINGS
@given(w=int_weights(max_weight=12), h=st.integers(0, 40), method=st.sampled_from(DIVISOR_METHODS))
def test_divisor_tie_detection_is_exact(w: dict[str, int | Fraction], h: int, method: str) -> None:
    names = list(w)
    expected = naive_divisor(
        method, [Fraction(w[n]) for n in names], h, [0] * len(w), [None] * len(w)
    )
    try:
        ours = list(apportion(w, h, method).seats.values())
    except TieError:
        assert expected is None
    else:
        assert ours == expected


# --- against the apportionment library ------------------------------------------------------------


@SETTINGS
@given(
    w=int_weights(min_weight=1, max_weight=10_000),
    h=st.integers(1, 60),
    method=st.sampled_from(sorted(LIBRARY_NAMES)),
)
def test_agrees_with_the_apportionment_library_where_no_tie_decides(
    w: dict[str, int | Fraction], h: int, method: str
) -> None:
    ours = no_tie(w, h, method)
    theirs = lib.compute(LIBRARY_NAMES[method], list(w.values()), h, fractions=True)
    assert ours == theirs


# --- where the apportionment library (1.0) is wrong, and we are right ----------------------------


@pytest.mark.parametrize("method", ["adams", "dean", "huntington-hill"])
def test_library_gives_first_seats_to_zero_weights(method: str) -> None:
    # With fewer seats than parties it hands out first seats down to the `seats`-th largest
    # vote count, here 0, so the two parties with no votes win and the only one with votes
    # gets nothing. The right answer gives both seats to the only unit with weight.
    assert lib.compute(LIBRARY_NAMES[method], [0, 0, 4], 2, fractions=True) == [1, 1, 0]
    assert apportion({"a": 0, "b": 0, "c": 4}, 2, method).seats == {"a": 0, "b": 0, "c": 2}


def test_library_breaks_an_exact_huntington_hill_tie_by_input_order() -> None:
    # 1^2/(1*2) == 6^2/(8*9): an exact tie for the 10th seat, decided by position there.
    assert lib.compute("huntington", [1, 6], 10, fractions=True) == [1, 9]
    assert lib.compute("huntington", [6, 1], 10, fractions=True) == [9, 1]
    with pytest.raises(TieError):
        apportion({"a": 1, "b": 6}, 10, "huntington-hill")


def test_library_quota_method_loses_exactness_on_huge_weights() -> None:
    # Its eligibility test uses floats: beyond 2**53 the upper quotas are rounded, and the
    # larger unit b ends with fewer seats than a.
    v = [3 * 10**18, 3 * 10**18 + 1, 10**18]
    assert lib.compute("quota", v, 7, fractions=True) == [4, 2, 1]
    ours = apportion({"a": v[0], "b": v[1], "c": v[2]}, 7, "quota")
    assert list(ours.seats.values()) == naive_quota([Fraction(x) for x in v], 7, reverse=False)
    assert list(ours.seats.values()) == [3, 3, 1]
    assert ours.within_quota()
