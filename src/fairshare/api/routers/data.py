"""Aggregates, the audit log, pseudonymised exports, bulk imports and user accounts."""

from __future__ import annotations

import csv
import io
import json
import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import JSONResponse, Response

from fairshare.api.deps import Grant, Require, StateDep
from fairshare.api.errors import ApiError
from fairshare.api.permissions import Permission, requires_state
from fairshare.api.routers.allocation import suppress
from fairshare.api.schemas import UserCreate, project
from fairshare.api.security import hash_password
from fairshare.registry.services import (
    aggregates,
    audit_log,
    create_user,
    pseudonymised_export,
)

router = APIRouter()
P = Permission


@router.get("/aggregates", tags=["reports"])
def aggregate_counts(
    app: StateDep, grant: Annotated[Grant, Depends(Require(P.aggregates_read))]
) -> dict[str, Any]:
    """Counts per state without personal data; counts below the minimum are suppressed."""
    with app.tx(readonly=True) as session:
        agg = aggregates(session)
    minimum = app.settings.aggregate_min_count
    states = []
    for row in agg["states"]:
        states.append(
            {
                "state": row["state"],
                "received": suppress(int(row["received"]), minimum),
                "share": row["share"],
                "fair_share": row["fair_share"],
                "waiting": {k: suppress(int(v), minimum) for k, v in row["waiting"].items()},
            }
        )
    return {"min_count": minimum, "key": agg["key"], "states": states}


@router.get("/audit", tags=["audit"])
def audit(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.audit_read))],
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    resource: Annotated[str | None, Query(max_length=32)] = None,
    record_id: Annotated[str | None, Query(max_length=80)] = None,
    state: Annotated[str | None, Query(max_length=8)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Audit events, oldest first; pass the last ``id`` as ``after_id`` for the next page."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ApiError(
                422,
                f"{name} needs a time zone, e.g. 2026-03-01T00:00:00Z",
                errors=[{"pointer": f"/{name}", "in": "query", "message": "no time zone"}],
            )
    with app.tx(readonly=True) as session:
        rows = audit_log(
            session,
            actor_name=actor,
            action=action,
            resource=resource,
            resource_id=record_id,
            state=state,
            since=since,
            until=until,
            after_id=after_id,
            limit=limit,
        )
        items = [
            project(
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "role": e.role,
                    "state": e.state,
                    "action": e.action,
                    "resource": e.resource,
                    "record_id": e.resource_id,
                    "reason": (e.detail or {}).get("reason"),
                },
                grant.role,
                "audit",
            )
            for e in rows
        ]
    return {
        "items": items,
        "limit": limit,
        "next_after_id": rows[-1].id if len(rows) == limit else None,
    }


_EXPORT_COLUMNS = (
    "pseudonym",
    "entry_state",
    "allocated_to",
    "registered_month",
    "status",
    "size",
    "tier",
    "needs",
    "age_band",
)


@router.get(
    "/exports/pseudonymised",
    tags=["exports"],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.exports_pseudonymised))],
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Response:
    """One row per person: a per-export pseudonym, states, month, status, size, tier, age band.

    The pseudonyms are keyed with a key drawn for this export only, so two exports cannot be
    linked row by row (Recital 26, Art. 25: pseudonymisation by default).
    """
    with app.tx() as session:
        cases = pseudonymised_export(session, grant.actor, key=secrets.token_bytes(32), scope="all")
    rows = []
    for c in cases:
        for person in c["persons"]:
            rows.append(
                project(
                    {
                        "pseudonym": person["person"],
                        "entry_state": c["entry_state"],
                        "allocated_to": c["allocated_state"],
                        "registered_month": c["registered_month"],
                        "status": c["status"],
                        "size": len(c["persons"]),
                        "tier": c["tier"],
                        "needs": c["needs"],
                        "age_band": person["age_band"],
                    },
                    grant.role,
                    "exports",
                )
            )
    if format_ == "json":
        return JSONResponse({"rows": rows})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(_EXPORT_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "needs": json.dumps(row.get("needs", {}), sort_keys=True)})
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8")


# ------------------------------------------------------------------------------------------
# Users


@router.post("/users", tags=["users"], status_code=status.HTTP_201_CREATED)
def new_user(
    app: StateDep,
    grant: Annotated[Grant, Depends(Require(P.users_manage))],
    body: UserCreate,
) -> dict[str, Any]:
    """Create an account (admin); state-bound roles need a state; the password policy applies."""
    if requires_state(body.role) and not body.state:
        raise ApiError(
            422,
            f"a {body.role.value} works for one state; give 'state'",
            errors=[{"pointer": "/state", "message": "required for this role"}],
        )
    try:
        password_hash = hash_password(body.password, body.username)
    except ValueError as exc:
        raise ApiError(
            422, str(exc), errors=[{"pointer": "/password", "message": str(exc)}]
        ) from None
    with app.tx() as session:
        user = create_user(
            session,
            grant.actor,
            username=body.username,
            password_hash=password_hash,
            role=body.role.value,
            state=body.state,
        )
        return project(
            {
                "username": user.username,
                "role": user.role,
                "state": user.state,
                "active": user.active,
                "created_at": user.created_at.isoformat(),
            },
            grant.role,
            "users",
        )
