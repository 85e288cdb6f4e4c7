"""The flows come from the bundled Eurostat data; assumptions are parameters."""

from __future__ import annotations

import numpy as np
import pytest

from fairshare.errors import InputError
from fairshare.simulation.flows import (
    EU28_FIRST_TIME_2015_2016,
    FlowAssumptions,
    build_flows,
    parse_entry_shares,
    sea_arrival_shares,
)


def test_volume_is_the_eurostat_total() -> None:
    flows = build_flows("2015-2016", seed=3)
    assert flows.persons == EU28_FIRST_TIME_2015_2016 == 2_464_095
    sizes = np.arange(1, 10)
    assert int(np.einsum("tekr,k->", flows.cases, sizes)) == 2_464_095
    assert int(flows.entry_applied.sum()) == 2_464_095
    assert len(flows.days) == 731


def test_per_state_totals_of_2015() -> None:
    flows = build_flows("2015-2016", seed=3)
    in_2015 = np.array([d.year == 2015 for d in flows.days])
    totals = flows.applied[in_2015].sum(axis=0)
    assert int(totals.sum()) == 1_257_580
    for state, expected in (("DE", 441_895), ("HU", 174_425), ("SE", 156_200)):
        assert int(totals[flows.states.index(state)]) == expected


def test_monthly_totals_are_exact_for_any_seed() -> None:
    a = build_flows("2016", seed=1)
    b = build_flows("2016", seed=2)
    assert (a.applied.sum(axis=0) == b.applied.sum(axis=0)).all()
    assert not (a.cases == b.cases).all()


def test_same_seed_same_flows() -> None:
    a = build_flows("2015", seed=9)
    b = build_flows("2015", seed=9)
    assert (a.cases == b.cases).all()
    assert (a.applied == b.applied).all()


def test_entry_states_follow_sea_arrivals_by_default() -> None:
    flows = build_flows("2015", seed=1)
    entry_persons = flows.entry_applied.sum(axis=1)
    entries = {flows.states[i] for i in np.flatnonzero(entry_persons)}
    assert entries == set(sea_arrival_shares()) == {"CY", "EL", "ES", "IT", "MT"}


def test_entry_file_replaces_the_assumption() -> None:
    shares = parse_entry_shares("entry_state,share\nHU,2\nEL,1\n", "entry.csv")
    flows = build_flows("2015", seed=1, assumptions=FlowAssumptions(entry_shares=shares))
    entry_persons = flows.entry_applied.sum(axis=1)
    assert {flows.states[i] for i in np.flatnonzero(entry_persons)} == {"HU", "EL"}


def test_bad_entry_file_says_what_to_fix() -> None:
    with pytest.raises(InputError, match="entry_state,share"):
        parse_entry_shares("state,weight\nEL,1\n", "x.csv")
    with pytest.raises(InputError, match="line 2"):
        parse_entry_shares("entry_state,share\nEL,abc\n", "x.csv")


def test_unaccompanied_minors_default_is_labelled_eurostat_ratio() -> None:
    assert FlowAssumptions().unaccompanied_minors == pytest.approx(88_300 / 1_257_580)
    assert "ASSUMPTIONS" in str(FlowAssumptions().describe()["label"])
