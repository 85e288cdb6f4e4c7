"""The synthetic instance generators: deterministic, valid, and close to their stated mixes."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest

from fairshare.cases import SERVICES, parse_problem_input
from fairshare.engine import BINDING_UNAVAILABLE, NO_BINDING
from fairshare.responsibility import linked_groups
from fairshare.screening import screen_case
from fairshare.synthetic import (
    DEFAULT_ASSUMPTIONS,
    EU28_STATES,
    VULNERABILITIES,
    synthetic_columns,
    synthetic_document,
)


def test_document_is_deterministic_per_seed() -> None:
    a = synthetic_document(300, seed=7, with_regions=40, non_participating=2)
    b = synthetic_document(300, seed=7, with_regions=40, non_participating=2)
    c = synthetic_document(300, seed=8, with_regions=40, non_participating=2)
    assert a == b
    assert a != c


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"states": ("DE", "SE", "IT"), "scarcity": 0.5, "service_scarcity": 0.3},
        {"with_regions": 60, "non_participating": 3},
        {"states": ("DE", "FR"), "with_regions": 5, "prior_persons": 0},
        {"states": ("MT",), "scarcity": 1.5},
    ],
)
def test_document_is_valid_input(kwargs: dict[str, object]) -> None:
    doc = synthetic_document(500, seed=3, **kwargs)  # type: ignore[arg-type]
    parsed = parse_problem_input(doc)
    assert len(parsed.cases) == 500
    assert [c.id for c in parsed.cases] == [c["id"] for c in doc["cases"]]
    for dest in parsed.destinations:
        assert dest.capacity >= 0
        assert all(0 <= v <= dest.capacity for v in dest.services.values())


def test_document_scarcity_and_services() -> None:
    doc = synthetic_document(4000, seed=11, scarcity=0.6, service_scarcity=0.5)
    parsed = parse_problem_input(doc)
    persons = sum(c.size for c in parsed.cases)
    capacity = sum(d.capacity for d in parsed.destinations)
    assert capacity == round(0.6 * persons)
    needs: Counter[str] = Counter()
    for case in parsed.cases:
        needs.update(screen_case(case).needs)
    for service in SERVICES:
        places = sum(d.services.get(service, 0) for d in parsed.destinations)
        assert places <= round(0.5 * needs[service])
        assert places >= round(0.5 * needs[service]) * 0.8  # only clipping by capacity loses
    # Some destination lacks some service: service places are scarce somewhere.
    assert any(len(d.services) < len(SERVICES) for d in parsed.destinations)


def test_document_mixes_roughly_as_assumed() -> None:
    doc = synthetic_document(20_000, seed=5)
    parsed = parse_problem_input(doc)
    sizes = Counter(c.size for c in parsed.cases)
    n = len(parsed.cases)
    for k, p in enumerate(DEFAULT_ASSUMPTIONS.family_sizes, start=1):
        assert abs(sizes[k] / n - p) < 0.01 + 0.15 * p, (k, sizes[k] / n, p)
    assert sizes[9] > 0
    assert max(sizes) == 9
    persons = sum(sizes[k] * k for k in sizes)
    assert 2.3 < persons / n < 2.9  # "10k cases, ~25k persons"
    screenings = [screen_case(c) for c in parsed.cases]
    tiers = Counter(s.tier for s in screenings)
    assert 0.05 <= tiers[1] / n <= 0.10
    # Unaccompanied minors: one-person cases, under 18, no adult.
    uams = [
        c for c, s in zip(parsed.cases, screenings, strict=True) if s.has("unaccompanied_minor")
    ]
    assert uams
    for case in uams:
        assert case.size == 1
        assert case.members[0].age is not None
        assert case.members[0].age < 18
    share_uam = len(uams) / sizes[1]
    assert abs(share_uam - DEFAULT_ASSUMPTIONS.unaccompanied_minor) < 0.02
    declared = Counter(v for c in parsed.cases for m in c.members for v in m.vulnerabilities)
    for category in VULNERABILITIES:
        if category != "minor":  # derived by screening, never declared
            assert declared[category] > 0, category
    # Links, linked pairs, preferences, scores, exclusions all occur.
    assert sum(1 for c in parsed.cases if c.family_links) / n == pytest.approx(0.05, abs=0.01)
    groups = [g for g in linked_groups(parsed.cases) if len(g) > 1]
    assert all(len(g) == 2 for g in groups)
    assert len(groups) * 2 / n == pytest.approx(DEFAULT_ASSUMPTIONS.linked_pair, abs=0.01)
    by_id = {c.id: c for c in parsed.cases}
    for a, b in groups:
        assert by_id[a].registered_on == by_id[b].registered_on
        assert by_id[a].entry_state == by_id[b].entry_state
    assert sum(1 for c in parsed.cases if c.preferences) / n == pytest.approx(0.3, abs=0.02)
    assert sum(1 for c in parsed.cases if c.scores) / n == pytest.approx(0.2, abs=0.02)
    assert sum(1 for c in parsed.cases if c.excluded) / n == pytest.approx(0.02, abs=0.005)


def test_regions_are_spread_by_population() -> None:
    doc = synthetic_document(100, seed=2, with_regions=100)
    dests = doc["destinations"]
    assert len(dests) == 100
    per_state = Counter(d["parent"] for d in dests)
    assert set(per_state) == set(EU28_STATES)
    assert per_state["DE"] > per_state["MT"] == 1
    assert all(d["id"].startswith(d["parent"] + "-") for d in dests)


def test_columns_are_deterministic_and_consistent() -> None:
    p = synthetic_columns(5000, 100, seed=4)
    q = synthetic_columns(5000, 100, seed=4)
    n, d, s = 5000, len(p.dest_ids), len(SERVICES)
    assert d == 100
    assert len(p.dest_state) == d
    for name in ("capacity", "before"):
        arr = getattr(p, name)
        assert arr.shape == (d,)
        assert arr.dtype == np.int64
    assert p.services.shape == (d, s)
    assert p.services.dtype == np.int64
    assert p.participating.shape == (d,)
    assert p.participating.dtype == np.bool_
    for name in ("size", "tier", "registered", "draw", "group", "binding"):
        arr = getattr(p, name)
        assert arr.shape == (n,), name
        assert arr.dtype == np.int64, name
        assert np.array_equal(arr, getattr(q, name)), name
    assert p.needs.shape == (n, s)
    assert p.needs.dtype == np.int64
    assert p.excluded.shape[1] == 2
    assert p.preferences.shape[1] == 3
    assert p.score_at.shape[1] == 2
    assert p.score_value.shape == (p.score_at.shape[0],)
    assert p.score_value.dtype == np.float64
    for arr in (p.excluded, p.preferences, p.score_at):
        assert arr.dtype == np.int64
        assert ((arr[:, 0] >= 0) & (arr[:, 0] < n)).all()
        assert ((arr[:, 1] >= 0) & (arr[:, 1] < d)).all()
    # Preferences: distinct destinations per case, ranks 0.. without holes.
    pairs = {(int(c), int(x)) for c, x, _ in p.preferences}
    assert len(pairs) == p.preferences.shape[0]
    ranks: dict[int, list[int]] = {}
    for c, _, r in p.preferences.tolist():
        ranks.setdefault(c, []).append(r)
    assert all(sorted(got) == list(range(len(got))) for got in ranks.values())
    # Shares: exact, over the states of the destinations, summing to 1.
    assert set(p.shares) == set(p.dest_state) == set(EU28_STATES)
    assert sum(p.shares.values()) == 1
    assert set(p.binding_states) == set(EU28_STATES)
    assert set(np.unique(p.binding)) <= {NO_BINDING, BINDING_UNAVAILABLE} | set(
        range(len(p.binding_states))
    )
    assert (p.binding == NO_BINDING).mean() > 0.9
    # Groups: own index, or the first case of a linked pair.
    linked = np.flatnonzero(p.group != np.arange(n))
    assert linked.size > 0
    assert np.array_equal(p.group[linked], linked - 1)
    assert np.array_equal(p.binding[linked], p.binding[linked - 1])
    assert np.array_equal(np.sort(p.draw), np.arange(n))
    assert ((p.tier >= 1) & (p.tier <= 3)).all()
    assert ((p.size >= 1) & (p.size <= 9)).all()
    assert (p.services <= p.capacity[:, None]).all()
    assert p.capacity.sum() == round(0.8 * int(p.size.sum()))
    assert p.largest_unit == int(p.size.max())


def test_columns_and_document_share_the_person_model() -> None:
    """Same seed: the columns' tiers and needs are what screening finds in the document."""
    doc = synthetic_document(2000, seed=9, states=("DE", "SE", "IT", "EL"))
    cols = synthetic_columns(2000, 0, seed=9, states=("DE", "SE", "IT", "EL"))
    assert cols.dest_ids == ("DE", "SE", "IT", "EL")
    parsed = parse_problem_input(doc)
    screenings = [screen_case(c) for c in parsed.cases]
    assert cols.tier.tolist() == [s.tier for s in screenings]
    needs = [[s.needs.get(service, 0) for service in SERVICES] for s in screenings]
    assert cols.needs.tolist() == needs
    assert cols.size.tolist() == [c.size for c in parsed.cases]


@pytest.mark.slow
def test_columns_scale_to_a_million_cases() -> None:
    start = time.perf_counter()
    p = synthetic_columns(1_000_000, 1000, seed=1)
    elapsed = time.perf_counter() - start
    assert len(p.dest_ids) == 1000
    assert p.size.shape == (1_000_000,)
    assert elapsed < 15  # a few seconds on the 2-core machine
