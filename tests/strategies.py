"""Shared Hypothesis strategies for fairshare's property tests."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

#: Every canonical apportionment method.
ALL_METHODS = ("hamilton", "webster", "jefferson", "adams", "huntington-hill", "dean", "quota")
#: The divisor methods.
DIVISOR_METHODS = ("webster", "jefferson", "adams", "huntington-hill", "dean")


@st.composite
def int_weights(
    draw: st.DrawFn,
    min_units: int = 1,
    max_units: int = 8,
    min_weight: int = 0,
    max_weight: int = 1000,
) -> dict[str, int]:
    """Units ``u0, u1, ...`` with integer weights, at least one of them positive."""
    values = draw(
        st.lists(
            st.integers(min_weight, max_weight), min_size=min_units, max_size=max_units
        ).filter(lambda vs: any(v > 0 for v in vs))
    )
    return {f"u{i}": v for i, v in enumerate(values)}


@st.composite
def weights(draw: st.DrawFn, max_units: int = 8) -> dict[str, int | Fraction]:
    """Units with int or Fraction weights (as a share key produces), some of them zero."""
    values = draw(
        st.lists(
            st.one_of(
                st.integers(0, 500),
                st.fractions(min_value=0, max_value=500, max_denominator=60),
            ),
            min_size=1,
            max_size=max_units,
        ).filter(lambda vs: any(v > 0 for v in vs))
    )
    return {f"u{i}": v for i, v in enumerate(values)}


@st.composite
def bounded_problem(
    draw: st.DrawFn,
) -> tuple[dict[str, int | Fraction], int, dict[str, int], dict[str, int]]:
    """A feasible problem with minimums and maximums: weights, seats, minimum, maximum."""
    w = draw(weights(max_units=6))
    minimum: dict[str, int] = {}
    maximum: dict[str, int] = {}
    for name, v in w.items():
        lo = draw(st.integers(0, 3))
        if lo:
            minimum[name] = lo
        if v > 0 and draw(st.booleans()):
            maximum[name] = lo + draw(st.integers(0, 15))
        elif v == 0:
            maximum[name] = lo  # weight 0: only ever its minimum
    low = sum(minimum.values())
    capacity = None
    if all(n in maximum for n, v in w.items() if v > 0):
        capacity = sum(maximum.values())
    high = low + 40 if capacity is None else capacity
    seats = draw(st.integers(low, high))
    return w, seats, minimum, maximum
