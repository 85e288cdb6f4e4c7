"""Registration, idempotency, duplicate fingerprints, bulk import, erasure and retention."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from sqlalchemy import Engine, func, select

from fairshare.cases import ValidationError
from fairshare.registry.db import session_scope
from fairshare.registry.errors import ConflictError, DuplicateIdempotencyError, NotFoundError
from fairshare.registry.models import AuditEvent, Case, CaseEvent, Document, Person, Screening
from fairshare.registry.services import (
    audit_log,
    bulk_import,
    erase_person,
    get_case,
    list_cases,
    persons_of_case,
    purge_expired,
    record_screening,
    register_case,
)

from .helpers import ADMIN, REG_EL, REG_IT, TODAY, family, row_counts


def test_register_a_family(engine: Engine, fingerprint_key: bytes) -> None:
    body = family(
        passport="N 123456",
        family_links=[
            {"state": "SE", "relation": "spouse", "status": "beneficiary", "member_name": "X"}
        ],
    )
    with session_scope(engine) as s:
        result = register_case(s, REG_EL, body, fingerprint_key=fingerprint_key, today=TODAY)
    assert result.case_id == "EL-2026-000001"
    assert result.persons == {"p1": "EL-2026-000001-P1", "p2": "EL-2026-000001-P2"}
    assert result.status == "registered"
    assert result.version == 1
    assert not result.replayed
    with session_scope(engine, readonly=True) as s:
        case = get_case(s, REG_EL, result.case_id, "own_entry_state")
        assert case.reception_place == "RIC Lesvos"
        people = persons_of_case(s, REG_EL, result.case_id)
        assert [p.given_name for p in people] == ["Given0", "Given1"]
        doc = s.scalars(select(Document)).one()
        assert doc.issuing_state == "SYR"
        assert len(doc.fingerprint) == 64
        assert s.scalars(select(CaseEvent.to_status)).all() == ["registered"]
        events = audit_log(s, action="case.registered")
        assert [e.resource_id for e in events] == [result.case_id]
        assert "Given0" not in str(events[0].detail)
    with session_scope(engine) as s:
        second = register_case(s, REG_EL, family(), fingerprint_key=fingerprint_key, today=TODAY)
    assert second.case_id == "EL-2026-000002"


def test_a_retried_registration_creates_nothing(engine: Engine, fingerprint_key: bytes) -> None:
    body = family()
    with session_scope(engine) as s:
        first = register_case(
            s, REG_EL, body, fingerprint_key=fingerprint_key, idempotency_key="k1", today=TODAY
        )
    before = row_counts(engine)
    with session_scope(engine) as s:
        again = register_case(
            s,
            REG_EL,
            copy.deepcopy(body),
            fingerprint_key=fingerprint_key,
            idempotency_key="k1",
            today=TODAY,
        )
    assert again.replayed
    assert again.case_id == first.case_id
    assert again.persons == first.persons
    assert row_counts(engine) == before
    changed = family(ages=(40,))
    with (
        pytest.raises(DuplicateIdempotencyError, match="different registration"),
        session_scope(engine) as s,
    ):
        register_case(
            s,
            REG_EL,
            changed,
            fingerprint_key=fingerprint_key,
            idempotency_key="k1",
            today=TODAY,
        )
    # The key is per user: another registrar's "k1" is a new request.
    with session_scope(engine) as s:
        other = register_case(
            s,
            REG_IT,
            family("IT"),
            fingerprint_key=fingerprint_key,
            idempotency_key="k1",
            today=TODAY,
        )
    assert other.case_id == "IT-2026-000001"


def test_same_person_in_two_states_is_flagged_not_merged(
    engine: Engine, fingerprint_key: bytes
) -> None:
    with session_scope(engine) as s:
        first = register_case(
            s, REG_EL, family(passport="N123-456"), fingerprint_key=fingerprint_key, today=TODAY
        )
    with session_scope(engine) as s:
        second = register_case(
            s,
            REG_IT,
            family("IT", passport="n 123 456"),
            fingerprint_key=fingerprint_key,
            today=TODAY,
        )
    assert second.duplicates == [
        {
            "person": "IT-2026-000001-P1",
            "matches": [{"person": "EL-2026-000001-P1", "via": ["document"]}],
        }
    ]
    with session_scope(engine, readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 4  # never merged
        assert s.scalar(select(func.count()).select_from(Case)) == 2
        old = s.get(Person, first.persons["p1"])
        assert old is not None
        assert old.duplicate_flags[0]["person"] == "IT-2026-000001-P1"
        flagged = audit_log(s, action="person.duplicate_flagged")
        assert [e.resource_id for e in flagged] == ["IT-2026-000001-P1"]
        assert flagged[0].detail == {"matches": ["EL-2026-000001-P1"], "review": "required"}


def test_biometric_duplicates_in_the_same_state(engine: Engine, fingerprint_key: bytes) -> None:
    body = family()
    body["members"][0]["biometric"] = "template-0001"
    with session_scope(engine) as s:
        register_case(s, REG_EL, body, fingerprint_key=fingerprint_key, today=TODAY)
        again = register_case(
            s, REG_EL, copy.deepcopy(body), fingerprint_key=fingerprint_key, today=TODAY
        )
    assert again.duplicates[0]["matches"] == [{"person": "EL-2026-000001-P1", "via": ["biometric"]}]
    with session_scope(engine, readonly=True) as s:
        stored = s.scalars(select(Person.fingerprint).where(Person.ref == "p1")).all()
        assert len(set(stored)) == 1
        assert "template-0001" not in stored


def test_bad_registrations_name_the_field(engine: Engine, fingerprint_key: bytes) -> None:
    body = family(entry_state="GR")
    body["members"][1]["age"] = -2
    body["members"][0]["birth_date"] = "2031-02-30"
    body["members"][0]["documents"] = [
        {"kind": "passport", "issuing_state": "SYR", "number": "1/2"}
    ]
    with pytest.raises(ValidationError) as info, session_scope(engine) as s:
        register_case(s, REG_EL, body, fingerprint_key=fingerprint_key, today=TODAY)
    pointers = [p for p, _ in info.value.problems]
    assert "/entry_state" in pointers
    assert "/members/1/age" in pointers
    assert "/members/0/birth_date" in pointers
    assert "/members/0/documents/0" in pointers
    assert "EL for GR" in str(info.value)
    with pytest.raises(ValidationError, match="you register for EL"), session_scope(engine) as s:
        register_case(s, REG_EL, family("IT"), fingerprint_key=fingerprint_key, today=TODAY)
    assert row_counts(engine)["cases"] == 0


def test_client_ids_must_be_new(engine: Engine, fingerprint_key: bytes) -> None:
    with session_scope(engine) as s:
        register_case(s, REG_EL, family(id="c1"), fingerprint_key=fingerprint_key, today=TODAY)
    with pytest.raises(ConflictError, match="already registered"), session_scope(engine) as s:
        register_case(s, REG_EL, family(id="c1"), fingerprint_key=fingerprint_key, today=TODAY)


def test_bulk_import_with_one_bad_row_imports_nothing(
    engine: Engine, fingerprint_key: bytes
) -> None:
    rows = [
        {
            "id": f"c{i}",
            "entry_state": "EL",
            "registered_on": "2026-01-05",
            "members": [{"id": f"p{i}", "age": 30}],
        }
        for i in range(5)
    ]
    rows[3]["members"][0]["age"] = "thirty"
    report_bad = None
    with session_scope(engine) as s:
        report_bad = bulk_import(
            s, ADMIN, {"cases": rows}, fingerprint_key=fingerprint_key, today=TODAY
        )
    assert not report_bad.ok
    assert report_bad.imported == []
    assert report_bad.errors == [
        {
            "row": 3,
            "pointer": "/cases/3/members/0/age",
            "message": "expected a whole number, got a string",
        }
    ]
    assert row_counts(engine)["cases"] == 0
    rows[3]["members"][0]["age"] = 30
    rows[4]["linked_cases"] = ["c0"]
    with session_scope(engine) as s:
        report = bulk_import(s, ADMIN, rows, fingerprint_key=fingerprint_key, today=TODAY)
    assert report.ok
    assert report.imported == [f"c{i}" for i in range(5)]
    with session_scope(engine) as s:
        again = bulk_import(s, ADMIN, rows[:1], fingerprint_key=fingerprint_key, today=TODAY)
    assert again.errors == [
        {"row": 0, "pointer": "/0/id", "message": "case id 'c0' is already registered"}
    ]


def test_the_allocation_input_example_imports(engine: Engine, fingerprint_key: bytes) -> None:
    import json
    from pathlib import Path

    scenario = (
        Path(__file__).parents[1] / "scenarios" / "art11_linked_family_bound_to_two_states.json"
    )
    doc = json.loads(scenario.read_text("utf-8"))
    cases = doc.get("input", doc).get("cases")
    with session_scope(engine) as s:
        report = bulk_import(s, ADMIN, cases, fingerprint_key=fingerprint_key, today=TODAY)
    assert report.ok, report.errors
    assert len(report.imported) == len(cases)


def test_erasure_keeps_the_audit_trail(engine: Engine, fingerprint_key: bytes) -> None:
    with session_scope(engine) as s:
        result = register_case(
            s, REG_EL, family(passport="X1"), fingerprint_key=fingerprint_key, today=TODAY
        )
        pid = result.persons["p1"]
        record_screening(
            s, REG_EL, pid, categories=["serious_illness"], advice_and_support="counselling"
        )
    with session_scope(engine) as s:
        erase_person(s, ADMIN, pid, reason="Art. 17 request")
    with session_scope(engine, readonly=True) as s:
        person = s.get(Person, pid)
        assert person is not None
        assert person.erased_at is not None
        assert (person.given_name, person.family_name, person.fingerprint) == (None, None, None)
        assert person.vulnerabilities == []
        assert s.scalar(select(func.count()).select_from(Document)) == 0
        screening = s.scalars(select(Screening)).one()
        assert screening.advice_and_support is None
        assert screening.categories == []
        case = s.get(Case, result.case_id)
        assert case is not None
        assert case.medical_needs is None
        actions = [e.action for e in audit_log(s)]
        assert actions[:2] == ["case.registered", "person.screened"]
        assert actions[-1] == "person.erased"
        assert s.scalars(select(CaseEvent.to_status)).all() == ["registered"]
    with pytest.raises(NotFoundError), session_scope(engine) as s:
        erase_person(s, ADMIN, "nobody", reason="x")


def test_purge_after_the_retention_period(engine: Engine, fingerprint_key: bytes) -> None:
    with session_scope(engine) as s:
        old = register_case(
            s,
            REG_EL,
            family(registered_on="2015-10-02"),
            fingerprint_key=fingerprint_key,
            today=TODAY,
        )
        new = register_case(s, REG_EL, family(), fingerprint_key=fingerprint_key, today=TODAY)
    with session_scope(engine) as s:
        erased = purge_expired(s, ADMIN, today=date(2026, 3, 2))
    assert erased == sorted(old.persons.values())
    with session_scope(engine, readonly=True) as s:
        for pid in new.persons.values():
            person = s.get(Person, pid)
            assert person is not None
            assert person.given_name is not None
        assert s.scalar(select(func.count()).select_from(AuditEvent)) >= 4


def test_scopes(engine: Engine, fingerprint_key: bytes) -> None:
    with session_scope(engine) as s:
        el = register_case(s, REG_EL, family(), fingerprint_key=fingerprint_key, today=TODAY)
        it = register_case(s, REG_IT, family("IT"), fingerprint_key=fingerprint_key, today=TODAY)
    with session_scope(engine, readonly=True) as s:
        assert [c.id for c in list_cases(s, REG_EL, "own_entry_state")] == [el.case_id]
        assert [c.id for c in list_cases(s, REG_IT, "own_state")] == [it.case_id]
        assert list_cases(s, REG_EL, "allocated_to_own_state") == []
        assert len(list_cases(s, ADMIN, "all")) == 2
        assert list_cases(s, ADMIN, "own_entry_state") == []  # no state: sees nothing
        with pytest.raises(NotFoundError):
            get_case(s, REG_EL, it.case_id, "own_entry_state")
        page = list_cases(s, ADMIN, "all", limit=1)
        rest = list_cases(s, ADMIN, "all", after_id=page[-1].id)
        assert [c.id for c in [*page, *rest]] == sorted([el.case_id, it.case_id])


def test_concurrent_retries_with_one_key_create_one_case(
    engine: Engine, fingerprint_key: bytes
) -> None:
    import threading

    barrier = threading.Barrier(4)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            with session_scope(engine) as s:
                result = register_case(
                    s,
                    REG_EL,
                    family(),
                    fingerprint_key=fingerprint_key,
                    idempotency_key="same",
                    today=TODAY,
                )
            results.append(result.case_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert results == ["EL-2026-000001"] * 4
    assert row_counts(engine)["cases"] == 1
