"""Cases, persons, screenings, the workflow and duplicates (registration at the entry state)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import String, cast, func, select, update
from sqlalchemy.orm import Session

from fairshare.api.deps import (
    Grant,
    IdempotencyKeyHeader,
    IfMatch,
    Require,
    StateDep,
    etag,
    if_match,
)
from fairshare.api.permissions import Permission
from fairshare.api.routers.views import case_views, event_view, person_views
from fairshare.api.schemas import (
    CaseCreate,
    CasePage,
    CasePublic,
    CaseUpdate,
    PersonPublic,
    ScreeningCreate,
    TransitionRequest,
)
from fairshare.registry.errors import NotFoundError, StaleVersionError
from fairshare.registry.models import Case, CaseEvent, Person
from fairshare.registry.scopes import case_scope_filter, cases_query, persons_query
from fairshare.registry.services import (
    audit_read,
    erase_person,
    get_case,
    record_event,
    record_screening,
    register_case,
    transition,
)

router = APIRouter(tags=["cases"])

P = Permission
MAX_LIMIT = 500


def person_in_scope(session: Session, grant: Grant, person_id: str) -> Person:
    """The person if their case is inside the grant's scope (404 for the person otherwise)."""
    person = session.get(Person, person_id)
    if person is None or person.erased_at is not None:
        raise NotFoundError("person", person_id)
    try:
        get_case(session, grant.actor, person.case_id, grant.registry_scope)
    except NotFoundError:
        raise NotFoundError("person", person_id) from None
    return person


def redact_duplicates(
    session: Session, grant: Grant, flags: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Duplicate flags with the matches outside the caller's scope reduced to a count."""
    out = []
    for flag in flags:
        matches = []
        hidden = 0
        for m in flag.get("matches", []):
            other = session.get(Person, m["person"])
            case = session.get(Case, other.case_id) if other is not None else None
            if case is not None and grant.may_see(
                entry_state=case.entry_state, allocated_to=case.allocated_state
            ):
                matches.append({"person": m["person"], "via": m["via"]})
            else:
                hidden += 1
        out.append({"person": flag["person"], "matches": matches, "outside_scope": hidden})
    return out


@router.get("/cases", response_model=CasePage, response_model_exclude_unset=True)
def list_cases(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.cases_list))],
    status_: Annotated[str | None, Query(alias="status", max_length=32)] = None,
    entry_state: Annotated[str | None, Query(max_length=8)] = None,
    allocated_to: Annotated[str | None, Query(max_length=16)] = None,
    tier: Annotated[int | None, Query(ge=1, le=9)] = None,
    registered_from: date | None = None,
    registered_to: date | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Cases in the caller's scope, filtered, ordered by id (a read of every case listed)."""
    query = cases_query(grant.actor, grant.registry_scope)
    if status_ is not None:
        query = query.where(Case.status == status_)
    if entry_state is not None:
        query = query.where(Case.entry_state == entry_state)
    if allocated_to is not None:
        query = query.where(Case.allocated_to == allocated_to)
    if tier is not None:
        query = query.where(Case.tier == tier)
    if registered_from is not None:
        query = query.where(Case.registered_on >= registered_from)
    if registered_to is not None:
        query = query.where(Case.registered_on <= registered_to)
    with app.tx() as session:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        cases = session.scalars(query.limit(limit).offset(offset)).all()
        items = case_views(session, grant.role, cases, date.today())
        if cases:
            audit_read(session, grant.actor, "case", [c.id for c in cases], action="list")
    return {"items": items, "total": int(total or 0), "limit": limit, "offset": offset}


@router.post(
    "/cases",
    status_code=status.HTTP_201_CREATED,
    responses={201: {"description": "registered (or the replay of an earlier retry)"}},
)
def create_case(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.cases_create))],
    body: CaseCreate,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Register a family case at the caller's entry state; duplicates are flagged, not merged."""
    with app.tx() as session:
        result = register_case(
            session,
            grant.actor,
            body.registry_body(),
            fingerprint_key=app.settings.fingerprint_key_bytes(),
            idempotency_key=idempotency_key,
        )
        out = result.to_dict()
        out["duplicates"] = redact_duplicates(session, grant, result.duplicates)
    response.headers["Location"] = f"/api/v1/cases/{result.case_id}"
    response.headers["ETag"] = etag(result.version)
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return out


@router.get("/cases/{case_id}", response_model=CasePublic, response_model_exclude_unset=True)
def read_case(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.cases_read))],
    case_id: str,
    response: Response,
) -> dict[str, Any]:
    """One case (404 if it is outside the caller's scope); the ETag is its version."""
    with app.tx() as session:
        case = get_case(session, grant.actor, case_id, grant.registry_scope)
        view = case_views(session, grant.role, [case], date.today())[0]
        audit_read(session, grant.actor, "case", [case.id])
    response.headers["ETag"] = etag(case.version)
    return view


@router.patch("/cases/{case_id}", response_model=CasePublic, response_model_exclude_unset=True)
def update_case(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.cases_update))],
    case_id: str,
    body: CaseUpdate,
    response: Response,
    if_match_: IfMatch = None,
) -> dict[str, Any]:
    """Change the care fields (If-Match required: 428 without, 412 when stale)."""
    expected = if_match(if_match_)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("child_protection_referral", False) is None:
        changes["child_protection_referral"] = False
    with app.tx() as session:
        case = session.scalar(
            select(Case)
            .where(Case.id == case_id, case_scope_filter(grant.actor, grant.registry_scope))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if case is None:
            raise NotFoundError("case", case_id)
        assert expected is not None
        if expected != case.version:
            raise StaleVersionError("case", case_id, expected, case.version)
        if changes:
            done = session.execute(
                update(Case)
                .where(Case.id == case_id, Case.version == case.version)
                .values(version=case.version + 1, **changes)
                .returning(Case.version)
            ).all()
            if not done:
                raise StaleVersionError("case", case_id, expected, case.version + 1)
            session.refresh(case)
            record_event(
                session,
                grant.actor,
                "case.updated",
                "case",
                case_id,
                state=case.entry_state,
                detail={"fields": sorted(changes), "version": case.version},
            )
        view = case_views(session, grant.role, [case], date.today())[0]
    response.headers["ETag"] = etag(case.version)
    return view


@router.post(
    "/cases/{case_id}/transitions", response_model=CasePublic, response_model_exclude_unset=True
)
def transition_case(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.transitions_create))],
    case_id: str,
    body: TransitionRequest,
    response: Response,
    if_match_: IfMatch = None,
) -> dict[str, Any]:
    """Move a case through the workflow (409 with the explanation if the step is not allowed)."""
    expected = if_match(if_match_)
    with app.tx() as session:
        case = transition(
            session,
            grant.actor,
            case_id,
            body.to,
            reason=body.reason,
            expected_version=expected,
            scope=grant.registry_scope,
        )
        view = case_views(session, grant.role, [case], date.today())[0]
    response.headers["ETag"] = etag(case.version)
    return view


@router.get(
    "/cases/{case_id}/persons", response_model=list[PersonPublic], response_model_exclude_unset=True
)
def case_persons(
    app: StateDep, grant: Annotated[Grant, Depends(Require(P.cases_read))], case_id: str
) -> list[dict[str, Any]]:
    """The members of a case (names with persons:read, Art. 9 data with persons:special)."""
    with app.tx() as session:
        case = get_case(session, grant.actor, case_id, grant.registry_scope)
        persons = session.scalars(
            select(Person).where(Person.case_id == case_id).order_by(Person.id)
        ).all()
        views = person_views(session, grant.role, persons, {case.id: case})
        if persons:
            audit_read(session, grant.actor, "person", [p.id for p in persons])
    return views


@router.get("/cases/{case_id}/events")
def case_events(
    app: StateDep, grant: Annotated[Grant, Depends(Require(P.cases_read))], case_id: str
) -> list[dict[str, Any]]:
    """The status timeline of a case: from, to, who, in which role, when, why."""
    with app.tx() as session:
        get_case(session, grant.actor, case_id, grant.registry_scope)
        events = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        ).all()
        audit_read(session, grant.actor, "case", [case_id], action="read")
    return [event_view(e) for e in events]


@router.post("/persons/{person_id}/screenings", status_code=status.HTTP_201_CREATED)
def screen_person(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.screenings_create))],
    person_id: str,
    body: ScreeningCreate,
    response: Response,
    if_match_: IfMatch = None,
) -> dict[str, Any]:
    """Record a vulnerability assessment (trafficking indicators: place of safety, tier 1)."""
    expected = if_match(if_match_, required=False)
    with app.tx() as session:
        person_in_scope(session, grant, person_id)
        result = record_screening(
            session,
            grant.actor,
            person_id,
            categories=body.categories,
            unhcr=body.unhcr_codes,
            trafficking_indicators=body.trafficking_indicators,
            advice_and_support=body.advice_and_support,
            age_assessed=body.age_assessed,
            expected_version=expected,
            scope=grant.registry_scope,
        )
    response.headers["ETag"] = etag(result.case_version)
    return {
        "screening_id": result.screening_id,
        "case_id": result.case_id,
        "tier": result.tier,
        "needs": result.needs,
        "place_of_safety_referral": result.place_of_safety_referral,
        "counts_as_minor": result.counts_as_minor,
        "case_version": result.case_version,
    }


@router.delete("/persons/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
def erase(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.persons_erase))],
    person_id: str,
    reason: Annotated[str, Query(min_length=1, max_length=200)] = "GDPR Art. 17 request",
) -> Response:
    """Erase a person's personal data (Art. 17); ids, status history and audit trail stay."""
    with app.tx() as session:
        person_in_scope(session, grant, person_id)
        erase_person(session, grant.actor, person_id, reason=reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/duplicates")
def duplicates(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.duplicates_read))],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Persons flagged as possibly registered twice, for review (never merged)."""
    query = persons_query(grant.actor, grant.registry_scope).where(
        Person.erased_at.is_(None),
        func.length(cast(Person.duplicate_flags, String)) > 2,
    )
    with app.tx() as session:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = session.scalars(query.limit(limit).offset(offset)).all()
        items = []
        for p in rows:
            flag = {"person": p.id, "matches": list(p.duplicate_flags)}
            redacted = redact_duplicates(session, grant, [flag])[0]
            items.append({**redacted, "case_id": p.case_id})
        if rows:
            audit_read(session, grant.actor, "person", [p.id for p in rows], action="search")
    return {"items": items, "total": int(total or 0), "limit": limit, "offset": offset}
