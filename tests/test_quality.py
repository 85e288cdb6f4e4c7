"""Quality of the allocation engine against an exact MIP (issue 3, "Done when: Quality").

On small scarce instances (synthetic families, service places, family links, linked cases,
excluded and non-participating destinations, regions) the engine must place the same number
of tier-1 persons as the exact lexicographic optimum (``tests/exact_mip.py``, OR-Tools CP-SAT
over individual cases), at least 99.5% of its tier-2 and of its total persons, never break a
hard constraint, and report an honest gap.

"Honest gap": the reported ``objective["gap"]`` (a fraction) is at least the true relative
shortfall, taken here as the largest over the three persons levels of
``(optimum - placed) / optimum`` (0 for a level whose optimum is 0 or that the engine meets).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from exact_mip import (
    Levels,
    Lexicographic,
    MipData,
    assignment_of,
    check_assignment,
    levels_of,
    prepare,
    solve_lexicographic,
)
from fairshare.synthetic import synthetic_document

_STATES = (
    ("DE", "SE"),
    ("DE", "SE", "IT"),
    ("FR", "PL", "EL", "AT"),
    ("DE", "FR", "IT", "ES", "SE"),
    ("NL", "BE", "LU"),
)
_SCARCITY = (0.5, 0.7, 0.85, 0.95, 1.05)
_SERVICE_SCARCITY = (0.3, 0.6, 0.9)


def _instance(i: int) -> dict[str, Any]:
    """Instance ``i`` of 20: 40–200 cases, 2–5 states, scarce capacity and service places."""
    states = _STATES[i % 5]
    return synthetic_document(
        40 + (i * 37) % 161,
        states=states,
        seed=100 + i,
        scarcity=_SCARCITY[(i * 3) % 5],
        service_scarcity=_SERVICE_SCARCITY[i % 3],
        with_regions=2 * len(states) if i % 4 == 3 else 0,
        non_participating=1 if i % 5 == 2 else 0,
    )


INSTANCES = range(20)


@cache
def _exact(i: int) -> tuple[MipData, Lexicographic]:
    data = prepare(_instance(i))
    return data, solve_lexicographic(data)


@cache
def _engine(i: int) -> dict[str, Any]:
    from fairshare.allocate import allocate_document  # the engine (issue 3)

    result: dict[str, Any] = allocate_document(_instance(i), seed=0)
    return result


def _shortfall(optimum: Levels, got: Levels) -> float:
    worst = 0.0
    for opt, placed in (
        (optimum.tier1, got.tier1),
        (optimum.tier2, got.tier2),
        (optimum.total, got.total),
    ):
        if opt > 0:
            worst = max(worst, (opt - placed) / opt)
    return worst


def test_reference_solution_is_feasible() -> None:
    """The exact solver's own assignment passes the checker the engine is judged by."""
    for i in (0, 3, 7):
        data, exact = _exact(i)
        assert check_assignment(data, exact.assignment) == []
        assert levels_of(data, exact.assignment) == exact.levels


@pytest.mark.parametrize("i", INSTANCES)
def test_engine_meets_the_exact_optimum(i: int) -> None:
    data, exact = _exact(i)
    output = _engine(i)
    assignment = assignment_of(output)
    assert [a["case"] for a in output["assignments"]] == list(data.case_ids)
    assert check_assignment(data, assignment) == []
    got = levels_of(data, assignment)
    opt = exact.levels
    assert got.tier1 == opt.tier1
    assert got.tier2 >= 0.995 * opt.tier2
    assert got.total >= 0.995 * opt.total


@pytest.mark.parametrize("i", INSTANCES)
def test_reported_gap_is_honest(i: int) -> None:
    data, exact = _exact(i)
    output = _engine(i)
    got = levels_of(data, assignment_of(output))
    objective = output["objective"]
    assert objective["tier1"]["placed"] == got.tier1
    assert objective["tier2"]["placed"] == got.tier2
    assert objective["total"]["placed"] == got.total
    # An upper bound on tier-1 persons is an upper bound on the optimum.
    assert objective["tier1"]["bound"] >= exact.levels.tier1 - 1e-6
    assert objective["gap"] >= 0
    assert objective["gap"] >= _shortfall(exact.levels, got) - 1e-9
