"""Screening, workflow transitions with optimistic concurrency, transfers, capacities."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, select

from fairshare.errors import InputError
from fairshare.registry.db import session_scope
from fairshare.registry.errors import NotFoundError, StaleVersionError
from fairshare.registry.models import CaseEvent
from fairshare.registry.services import (
    audit_log,
    commit_batch,
    confirm_arrival,
    confirm_transferred,
    get_case,
    overdue_transfers,
    record_screening,
    register_case,
    schedule_transfer,
    set_capacity,
    transition,
)
from fairshare.workflow import TransitionError

from .helpers import ADMIN, CAP_DE, COORD, CW_DE, REG_EL, TODAY, capacities, family, make_ready


def _register(engine: Engine, key: bytes, body: dict[str, object] | None = None) -> str:
    with session_scope(engine) as s:
        return register_case(s, REG_EL, body or family(), fingerprint_key=key, today=TODAY).case_id


def test_trafficking_indicators_make_tier_1_and_a_referral(
    engine: Engine, fingerprint_key: bytes
) -> None:
    case_id = _register(engine, fingerprint_key, family(ages=(24,)))
    with session_scope(engine) as s:
        before = get_case(s, REG_EL, case_id)
        assert before.tier == 3
        result = record_screening(
            s,
            REG_EL,
            f"{case_id}-P1",
            trafficking_indicators=["recruited with false job offer"],
            advice_and_support="NGO contact given; legal advice on residence permit",
            expected_version=before.version,
        )
    assert result.tier == 1
    assert result.place_of_safety_referral
    assert result.needs == {"trafficking_shelter": 1}
    with session_scope(engine, readonly=True) as s:
        case = get_case(s, REG_EL, case_id)
        assert case.tier == 1
        assert case.version == 2
        assert case.priority_reason is not None
        assert "place of safety" in case.priority_reason
        event = audit_log(s, action="person.screened")[0]
        assert event.detail["place_of_safety_referral"] is True
        assert "NGO" not in str(event.detail)


def test_uncertain_age_counts_as_minor_until_assessed(
    engine: Engine, fingerprint_key: bytes
) -> None:
    body = family(ages=(17,))
    body["members"][0]["age_uncertain"] = True
    case_id = _register(engine, fingerprint_key, body)
    with session_scope(engine) as s:
        first = record_screening(s, REG_EL, f"{case_id}-P1")
        assert first.counts_as_minor
        assert first.tier == 1
        assert first.needs == {"unaccompanied_minor": 1}
        assessed = record_screening(s, REG_EL, f"{case_id}-P1", age_assessed=21)
    assert not assessed.counts_as_minor
    assert assessed.tier == 3
    assert assessed.needs == {}
    with pytest.raises(InputError, match="unknown category"), session_scope(engine) as s:
        record_screening(s, REG_EL, f"{case_id}-P1", categories=["tall"])


def test_transitions_are_validated_stamped_and_versioned(
    engine: Engine, fingerprint_key: bytes
) -> None:
    case_id = _register(engine, fingerprint_key)
    with (
        pytest.raises(TransitionError, match="no such transition") as info,
        session_scope(engine) as s,
    ):
        transition(s, REG_EL, case_id, "allocated")
    assert info.value.allowed[0] == "screened"
    with session_scope(engine) as s:
        case = transition(s, REG_EL, case_id, "screened", expected_version=1)
        assert case.version == 2
        assert case.status == "screened"
    with (
        pytest.raises(StaleVersionError, match="version 2, not 1") as stale,
        session_scope(engine) as s,
    ):
        transition(s, REG_EL, case_id, "ready", expected_version=1)
    assert stale.value.current == 2
    with pytest.raises(TransitionError, match="needs a reason"), session_scope(engine) as s:
        transition(s, REG_EL, case_id, "withdrawn")
    with session_scope(engine) as s:
        transition(
            s, REG_EL, case_id, "withdrawn", reason="withdrawn in writing", expected_version=2
        )
    with session_scope(engine, readonly=True) as s:
        events = s.scalars(select(CaseEvent).order_by(CaseEvent.id)).all()
        assert [(e.from_status, e.to_status, e.by, e.reason) for e in events] == [
            (None, "registered", "reg-el", None),
            ("registered", "screened", "reg-el", None),
            ("screened", "withdrawn", "reg-el", "withdrawn in writing"),
        ]
        assert len(audit_log(s, action="case.transition")) == 2
    with pytest.raises(NotFoundError), session_scope(engine) as s:
        transition(s, CW_DE, case_id, "absconded", reason="x", scope="allocated_to_own_state")


def test_transfer_line_and_overdue(engine: Engine, fingerprint_key: bytes) -> None:
    case_id = _register(engine, fingerprint_key)
    capacities(engine, {"DE": 5})
    make_ready(engine, case_id)
    with session_scope(engine) as s:
        batch = commit_batch(s, COORD, 7, today=date(2026, 3, 2))
    assert batch.allocated == [case_id]
    with session_scope(engine, readonly=True) as s:
        case = get_case(s, CW_DE, case_id, "allocated_to_own_state")
        assert case.transfer_deadline == date(2026, 9, 2)
        assert overdue_transfers(s, ADMIN, date(2026, 9, 2)) == []
        assert [c.id for c in overdue_transfers(s, ADMIN, date(2026, 9, 3))] == [case_id]
        assert overdue_transfers(s, REG_EL, date(2026, 9, 3), "allocated_to_own_state") == []
    with session_scope(engine) as s:
        schedule_transfer(s, REG_EL, case_id, date(2026, 4, 1))
        confirm_transferred(s, REG_EL, case_id)
    with pytest.raises(TransitionError), session_scope(engine) as s:
        confirm_arrival(s, REG_EL, case_id)  # only the receiving state confirms arrival
    with session_scope(engine) as s:
        transfer = confirm_arrival(s, CW_DE, case_id, scope="allocated_to_own_state")
        assert transfer.status == "arrived"
        assert transfer.arrived_at is not None
    with session_scope(engine, readonly=True) as s:
        assert get_case(s, ADMIN, case_id).status == "arrived"
        assert overdue_transfers(s, ADMIN, date(2027, 1, 1)) == []


def test_revoking_an_allocation_gives_the_place_back(
    engine: Engine, fingerprint_key: bytes
) -> None:
    case_id = _register(engine, fingerprint_key)
    capacities(engine, {"DE": 5})
    make_ready(engine, case_id)
    with session_scope(engine) as s:
        commit_batch(s, COORD, 1, today=TODAY)
    with session_scope(engine) as s:
        case = transition(s, COORD, case_id, "ready", reason="transfer lapsed (Art. 29(2))")
        assert case.allocated_to is None
        assert case.transfer_deadline is None
    with session_scope(engine, readonly=True) as s:
        from fairshare.registry.services import current_ledger, get_capacity

        assert get_capacity(s, ADMIN, "DE").free == 5
        assert current_ledger(s)[0] == {"DE": 0}


def test_capacities_are_versioned_and_scoped(engine: Engine) -> None:
    with session_scope(engine) as s:
        row = set_capacity(s, CAP_DE, "DE", free=10, services={"medical": 2}, scope="own_state")
        assert row.version == 1
        assert row.services["medical"] == 2
    with session_scope(engine) as s:
        row = set_capacity(s, CAP_DE, "DE", free=8, expected_version=1, scope="own_state")
        assert row.version == 2
        assert row.services["medical"] == 0
    with pytest.raises(StaleVersionError), session_scope(engine) as s:
        set_capacity(s, CAP_DE, "DE", free=9, expected_version=1, scope="own_state")
    with pytest.raises(NotFoundError), session_scope(engine) as s:
        set_capacity(s, CAP_DE, "FR", free=9, scope="own_state")
    with pytest.raises(InputError, match="exceed"), session_scope(engine) as s:
        set_capacity(s, CAP_DE, "DE", free=1, services={"medical": 2}, scope="own_state")
    with pytest.raises(InputError, match="0 or more"), session_scope(engine) as s:
        set_capacity(s, ADMIN, "DE", free=-1)
    with session_scope(engine) as s:
        region = set_capacity(s, ADMIN, "DE-BY", parent="DE", free=3)
        assert region.state == "DE"
