"""Capacities, allocation batches, transfers and the fair-share ledger."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairshare.api.deps import (
    Grant,
    IdempotencyKeyHeader,
    IfMatch,
    Require,
    StateDep,
    etag,
    idempotent_replay,
    idempotent_store,
    if_match,
    request_hash,
)
from fairshare.api.permissions import Permission, Scope
from fairshare.api.routers.views import is_case_overdue
from fairshare.api.schemas import BatchRequest, CapacityPut, TransferSchedule, project
from fairshare.registry.errors import NotFoundError
from fairshare.registry.models import Assignment, Batch, Capacity, Case, Transfer
from fairshare.registry.scopes import cases_query
from fairshare.registry.services import (
    aggregates,
    commit_batch,
    confirm_arrival,
    confirm_transferred,
    get_capacity,
    list_capacities,
    preview_batch,
    schedule_transfer,
    set_capacity,
)

router = APIRouter()
P = Permission
MAX_LIMIT = 500


def capacity_view(row: Capacity, grant: Grant) -> dict[str, Any]:
    """A capacity as the caller may see it (``state`` is the destination: a state or region)."""
    record = {
        "state": row.destination_id,
        "places": row.free,
        "free_places": row.free,
        "service_places": row.services,
        "updated_at": row.updated_at.isoformat(),
        "version": row.version,
    }
    return project(record, grant.role, "capacities")


@router.get("/capacities", tags=["capacities"])
def capacities(
    app: StateDep, grant: Annotated[Grant, Depends(Require(P.capacities_read))]
) -> list[dict[str, Any]]:
    """Free places and service places per destination (a capacity manager: own state only)."""
    with app.tx(readonly=True) as session:
        rows = list_capacities(session, grant.actor, grant.registry_scope)
        return [capacity_view(r, grant) for r in rows]


@router.put("/capacities/{destination_id}", tags=["capacities"])
def put_capacity(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.capacities_update))],
    destination_id: str,
    body: CapacityPut,
    response: Response,
    if_match_: IfMatch = None,
) -> dict[str, Any]:
    """Set a destination's free and service places (If-Match required once it exists)."""
    with app.tx() as session:
        exists = session.scalar(
            select(Capacity.version).where(Capacity.destination_id == destination_id)
        )
        if exists is not None:
            get_capacity(session, grant.actor, destination_id, grant.registry_scope)
        expected = if_match(if_match_, required=exists is not None)
        row = set_capacity(
            session,
            grant.actor,
            destination_id,
            free=body.free,
            services=body.services,
            parent=body.parent,
            participating=body.participating,
            languages=body.languages,
            nationalities=body.nationalities,
            expected_version=expected if exists is not None else None,
            scope=grant.registry_scope,
        )
        view = capacity_view(row, grant)
    response.headers["ETag"] = etag(row.version)
    if exists is None:
        response.status_code = status.HTTP_201_CREATED
    return view


# ------------------------------------------------------------------------------------------
# Batches


@router.post("/batches/preview", tags=["batches"])
def batch_preview(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.batches_preview))],
    body: BatchRequest,
) -> dict[str, Any]:
    """A dry run: the engine's full output (every reason, fairness before and after)."""
    seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
    with app.tx(readonly=True) as session:
        preview = preview_batch(session, grant.actor, seed, body.case_ids, key=body.key)
        return {"seed": seed, **preview.to_dict()}


@router.post("/batches", tags=["batches"], status_code=status.HTTP_201_CREATED)
def batch_commit(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.batches_commit))],
    body: BatchRequest,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Commit a batch in one serialised transaction (assignments, ledger, capacities, audit)."""
    seed = body.seed if body.seed is not None else secrets.randbelow(2**31)
    digest = request_hash(body.model_dump(mode="json"))
    with app.tx() as session:
        if idempotency_key is not None:
            replay = idempotent_replay(session, grant.actor, idempotency_key, digest)
            if replay is not None:
                code, stored = replay
                return JSONResponse(
                    stored,
                    status_code=code,
                    headers={
                        "Location": f"/api/v1/batches/{stored.get('batch_id', '')}",
                        "Idempotent-Replayed": "true",
                    },
                )
        result = commit_batch(
            session,
            grant.actor,
            seed,
            body.case_ids,
            key=body.key,
            deadline_months=body.deadline_months or app.settings.transfer_deadline_months,
        )
        out = {"seed": seed, **result.to_dict()}
        if idempotency_key is not None:
            idempotent_store(session, grant.actor, idempotency_key, 201, out)
    return JSONResponse(
        out, status_code=201, headers={"Location": f"/api/v1/batches/{result.batch_id}"}
    )


def batch_view(session: Session, batch: Batch, grant: Grant, *, full: bool) -> dict[str, Any]:
    """A batch; with ``full`` its assignments and reasons."""
    summary = dict(batch.summary or {})
    dests = summary.get("destinations", [])
    record: dict[str, Any] = {
        "id": batch.id,
        "status": batch.status,
        "created_at": batch.created_at.isoformat(),
        "created_by": batch.coordinator,
        "committed_at": batch.created_at.isoformat(),
        "seed": batch.seed,
        "fairness_before": {d["id"]: d.get("deviation_before") for d in dests},
        "fairness_after": {d["id"]: d.get("deviation_after") for d in dests},
    }
    if full:
        rows = session.scalars(
            select(Assignment).where(Assignment.batch_id == batch.id).order_by(Assignment.case_id)
        ).all()
        record["assignments"] = [
            {
                "case": a.case_id,
                "destination": a.destination,
                "state": a.state,
                "persons": a.persons,
            }
            for a in rows
        ]
        record["reasons"] = {a.case_id: list(a.reasons) for a in rows}
    return project(record, grant.role, "batches")


@router.get("/batches", tags=["batches"])
def batches(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.batches_read))],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Committed batches, newest first."""
    with app.tx(readonly=True) as session:
        total = session.scalar(select(func.count()).select_from(Batch))
        rows = session.scalars(
            select(Batch).order_by(Batch.created_at.desc(), Batch.id).limit(limit).offset(offset)
        ).all()
        items = [batch_view(session, b, grant, full=False) for b in rows]
    return {"items": items, "total": int(total or 0), "limit": limit, "offset": offset}


@router.get("/batches/{batch_id}", tags=["batches"])
def batch(
    app: StateDep, grant: Annotated[Grant, Depends(Require(P.batches_read))], batch_id: str
) -> dict[str, Any]:
    """One batch with its assignments, each case's reasons and fairness before/after."""
    with app.tx(readonly=True) as session:
        row = session.get(Batch, batch_id)
        if row is None:
            raise NotFoundError("batch", batch_id)
        return batch_view(session, row, grant, full=True)


# ------------------------------------------------------------------------------------------
# Transfers (Regulation (EU) No 604/2013 Art. 29)


def transfer_view(case: Case, transfer: Transfer | None, today: date) -> dict[str, Any]:
    """The transfer of an allocated case (``pending`` before one is scheduled)."""
    return {
        "case_id": case.id,
        "from_state": case.entry_state,
        "to_state": case.allocated_to,
        "status": transfer.status if transfer is not None else "pending",
        "scheduled_on": transfer.scheduled_for.isoformat() if transfer is not None else None,
        "deadline": case.transfer_deadline.isoformat() if case.transfer_deadline else None,
        "overdue": is_case_overdue(case, today),
        "transferred_on": transfer.transferred_at.isoformat()
        if transfer is not None and transfer.transferred_at
        else None,
        "arrived_on": transfer.arrived_at.isoformat()
        if transfer is not None and transfer.arrived_at
        else None,
        "version": case.version,
    }


@router.get("/transfers", tags=["transfers"])
def transfers(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.transfers_read))],
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Transfers of allocated cases in the caller's scope; ``overdue=true``: past the deadline."""
    today = date.today()
    query = cases_query(grant.actor, grant.registry_scope).where(Case.allocated_to.is_not(None))
    if overdue:
        query = query.where(
            Case.status.in_(("allocated", "transfer_scheduled")),
            Case.transfer_deadline < today,
        )
    with app.tx(readonly=True) as session:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        cases = session.scalars(query.limit(limit).offset(offset)).all()
        latest: dict[str, Transfer] = {}
        if cases:
            for t in session.scalars(
                select(Transfer)
                .where(Transfer.case_id.in_([c.id for c in cases]))
                .order_by(Transfer.id)
            ):
                latest[t.case_id] = t
        items = [
            project(transfer_view(c, latest.get(c.id), today), grant.role, "transfers")
            for c in cases
        ]
    return {"items": items, "total": int(total or 0), "limit": limit, "offset": offset}


def _transfer_response(
    app: StateDep, grant: Grant, case_id: str, response: Response
) -> dict[str, Any]:
    with app.tx(readonly=True) as session:
        case = session.get(Case, case_id)
        assert case is not None
        transfer = session.scalar(
            select(Transfer)
            .where(Transfer.case_id == case_id)
            .order_by(Transfer.id.desc())
            .limit(1)
        )
        view = project(transfer_view(case, transfer, date.today()), grant.role, "transfers")
        response.headers["ETag"] = etag(case.version)
        return view


@router.post("/cases/{case_id}/transfer", tags=["transfers"])
def schedule(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.transfers_update))],
    case_id: str,
    body: TransferSchedule,
    response: Response,
    if_match_: IfMatch = None,
) -> dict[str, Any]:
    """Fix the transfer date (on or before the deadline) of an allocated case."""
    expected = if_match(if_match_)
    with app.tx() as session:
        schedule_transfer(
            session,
            grant.actor,
            case_id,
            body.scheduled_for,
            expected_version=expected,
            scope=grant.registry_scope,
        )
    return _transfer_response(app, grant, case_id, response)


@router.post("/cases/{case_id}/transfer/transferred", tags=["transfers"])
def transferred(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.transfers_update))],
    case_id: str,
    response: Response,
    if_match_: IfMatch = None,
) -> dict[str, Any]:
    """The entry state confirms the departure."""
    expected = if_match(if_match_)
    with app.tx() as session:
        confirm_transferred(
            session, grant.actor, case_id, expected_version=expected, scope=grant.registry_scope
        )
    return _transfer_response(app, grant, case_id, response)


@router.post("/cases/{case_id}/transfer/arrived", tags=["transfers"])
def arrived(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.transfers_update))],
    case_id: str,
    response: Response,
    if_match_: IfMatch = None,
) -> dict[str, Any]:
    """The receiving state's caseworker confirms the arrival."""
    expected = if_match(if_match_)
    with app.tx() as session:
        confirm_arrival(
            session, grant.actor, case_id, expected_version=expected, scope=grant.registry_scope
        )
    return _transfer_response(app, grant, case_id, response)


# ------------------------------------------------------------------------------------------
# Ledger


def suppress(count: int | None, minimum: int) -> int | None:
    """A count, or ``None`` when it is below ``minimum`` (small groups are not shown)."""
    if count is None:
        return None
    return count if count == 0 or count >= minimum else None


@router.get("/ledger", tags=["ledger"])
def ledger(
    app: StateDep, grant: Annotated[Grant, Depends(Require(P.ledger_read))]
) -> dict[str, Any]:
    """Fair shares, persons received and the deficit (fair share minus received) per state."""
    with app.tx(readonly=True) as session:
        agg = aggregates(session)
    minimum = app.settings.aggregate_min_count
    small = grant.scope is Scope.aggregates_only
    states = []
    for row in agg["states"]:
        received = int(row["received"])
        fair = row["fair_share"]
        shown = suppress(received, minimum) if small else received
        states.append(
            {
                "state": row["state"],
                "share": row["share"],
                "fair_share": fair,
                "received": shown,
                "deficit": None if fair is None or shown is None else fair - received,
            }
        )
    return {
        "key": agg["key"],
        "total_received": agg["total_received"],
        "M": agg["M"],
        "states": states,
    }
