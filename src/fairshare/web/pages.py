"""The dashboard's pages: server-rendered HTML (Jinja2) with htmx for partial updates.

Every page checks the same permission table as the API (:data:`fairshare.api.permissions.GRANTS`,
default deny) and the same scopes; personal and special-category fields are shown only to
roles whose :func:`~fairshare.api.permissions.visible_fields` include them, and every read of
personal data is written to the audit log in the same transaction as the read.
"""

from __future__ import annotations

import functools
import inspect
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from fairshare.api.deps import PUBLIC, AppState, Grant, Principal, registry_scope
from fairshare.api.errors import ApiError
from fairshare.api.permissions import (
    AuthorizationError,
    NotVisibleError,
    Permission,
    Role,
    Scope,
    is_allowed,
    visible_fields,
)
from fairshare.cases import SERVICES, ValidationError, vulnerability_categories
from fairshare.errors import InputError
from fairshare.reference import states as known_states
from fairshare.registry import dashboard
from fairshare.registry.errors import ConflictError, NotFoundError, StaleVersionError
from fairshare.registry.services import (
    aggregates,
    audit_log,
    audit_read,
    commit_batch,
    confirm_arrival,
    confirm_transferred,
    list_capacities,
    preview_batch,
    record_screening,
    register_case,
    schedule_transfer,
    set_capacity,
    transition,
)
from fairshare.web import views
from fairshare.web.session import (
    COOKIE,
    PageHome,
    PagePermission,
    check_csrf,
    csrf_token,
    navigation,
    web_principal,
)
from fairshare.workflow import TransitionError, next_states, workflow_rules

__all__ = ["TRAFFICKING_INDICATORS", "refused_page", "router"]

router = APIRouter(include_in_schema=False)

_env = Environment(
    loader=PackageLoader("fairshare.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals["static"] = lambda name: f"/static/{name}"
_env.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int) else f"{n:,.1f}"
_env.filters["percent"] = lambda x: "–" if x is None else f"{x:.0%}"
templates = Jinja2Templates(env=_env)

ROLE_LABELS = {
    "registrar": "registrar",
    "caseworker": "caseworker",
    "capacity_manager": "capacity manager",
    "coordinator": "coordinator",
    "auditor": "auditor",
    "analyst": "analyst",
    "admin": "administrator",
}

FLASH_COOKIE = "fairshare_flash"

#: The workflow's main line; a move along it is the page's main action, the others
#: (side states, steps back) sit behind "Other status changes".
_MAIN_LINE = (
    "registered",
    "screened",
    "ready",
    "allocated",
    "transfer_scheduled",
    "transferred",
    "arrived",
)

#: Messages after a change, by code (a redirect carries the code, never free text).
DONE = {
    "registered": "The family is registered. Screen each member next.",
    "screened": "The screening is recorded.",
    "moved": "The case has moved on.",
    "committed": "The batch is committed: the cases are allocated and the ledger is updated.",
    "capacity": "The capacity is saved.",
    "arrived": "The arrival is confirmed.",
    "transfer": "The transfer is recorded.",
}


def _app(request: Request) -> AppState:
    state: AppState = request.app.state.fairshare
    return state


def _today() -> date:
    return datetime.now(UTC).date()


def _render(
    request: Request,
    principal: Principal | None,
    name: str,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    done = request.query_params.get("done")
    flashes = list(context.pop("flashes", []))
    if done in DONE:
        flashes.insert(0, ("ok", DONE[done]))
    carried = request.cookies.get(FLASH_COOKIE)
    if carried:
        flashes.insert(0, ("error", carried))
    base: dict[str, Any] = {
        "request": request,
        "flashes": flashes,
        "user": None,
        "nav": [],
        "csrf": "",
        "title": context.get("title", "fairshare"),
    }
    if principal is not None:
        base["user"] = {
            "username": principal.username,
            "role": principal.role.value,
            "role_label": ROLE_LABELS.get(principal.role.value, principal.role.value),
            "state": principal.state,
        }
        base["nav"] = navigation(principal, request.url.path)
        base["csrf"] = csrf_token(request, principal)
    base.update(context)
    response = templates.TemplateResponse(request, name, base, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    if carried:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


@contextmanager
def _errors_as_pages(request: Request, principal: Principal | None) -> Iterator[None]:
    """Turn a refusal into an HTML page with the same status the API would answer."""
    try:
        yield
    except (NotVisibleError, NotFoundError) as exc:
        raise _PageError(
            _render(request, principal, "error.html", 404, title="Not found", message=str(exc))
        ) from None
    except AuthorizationError as exc:
        raise _PageError(refused_page(request, principal, str(exc))) from None


class _PageError(Exception):
    """A finished response raised from inside a page (an error page)."""

    def __init__(self, response: Response) -> None:
        super().__init__("page")
        self.response = response


def _guard(request: Request) -> tuple[Principal, Scope]:
    """The user and scope granted by the page's :class:`PagePermission` (checked already)."""
    grant: Grant = request.state.grant
    return grant.principal, grant.scope


def refused_page(request: Request, principal: Principal | None, message: str) -> Response:
    """The page a role may not open (403), in HTML."""
    return _render(request, principal, "error.html", 403, title="Not allowed", message=message)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def page(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a page (plain or async); a raised :class:`_PageError` becomes its response."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def run_async(*args: Any, **kwargs: Any) -> Response:
            try:
                response: Response = await func(*args, **kwargs)
            except _PageError as done:
                return done.response
            return response

        return run_async

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Response:
        try:
            response: Response = func(*args, **kwargs)
        except _PageError as done:
            return done.response
        return response

    return run


# --------------------------------------------------------------------------------------------
# Login and logout


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", dependencies=[Depends(PUBLIC)], response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return _render(
        request, None, "login.html", title="Log in", next=_safe_next(next), username="", error=None
    )


@router.post("/login", dependencies=[Depends(PUBLIC)], response_class=HTMLResponse)
def login_submit(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    from fairshare.api.routers.auth import authenticate

    app = _app(request)
    client = request.client.host if request.client else "unknown"
    try:
        token, expires = authenticate(app, username, password, client)
    except ApiError as exc:
        status = 429 if exc.status == 429 else 401
        return _render(
            request,
            None,
            "login.html",
            status,
            title="Log in",
            next=_safe_next(next),
            username=username[:64],
            error=exc.detail,
        )
    response = _redirect(_safe_next(next))
    max_age = int((expires - datetime.now(UTC)).total_seconds())
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(max_age, 0),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout", dependencies=[Depends(PUBLIC)])
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    from fairshare.api.routers.auth import revoke

    try:
        principal = web_principal(request)
    except Exception:
        principal = None
    if principal is not None:
        check_csrf(request, principal, csrf)
        revoke(_app(request), principal)
    response = _redirect("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


# --------------------------------------------------------------------------------------------
# Overview: the map, the states, the recent batches


@router.get(
    "/", dependencies=[Depends(PageHome(Permission.aggregates_read))], response_class=HTMLResponse
)
@page
def overview(request: Request) -> Response:
    principal, _ = _guard(request)
    app = _app(request)
    with app.tx(readonly=True) as session:
        totals = aggregates(session)
        capacity = dashboard.capacity_totals(session)
        batches = dashboard.recent_batches(session)
        batch_rows = [
            {
                "id": b.id,
                "at": b.created_at,
                "by": b.coordinator,
                "cases": (b.summary or {}).get("cases_allocated"),
                "persons": (b.summary or {}).get("persons_allocated"),
            }
            for b in batches
        ]
    rows = views.overview_rows(totals, capacity)
    waiting = sorted(
        (
            {"state": s["state"], "name": views.state_name(s["state"]), **s["waiting"]}
            for s in totals["states"]
            if s["waiting"]
        ),
        key=lambda r: r["state"],
    )
    return _render(
        request,
        principal,
        "overview.html",
        title="Overview",
        rows=rows,
        svg=views.state_map(rows),
        legend=[*views.FULFILMENT_CLASSES, (*views.NO_SHARE, None)],
        total=totals["total_received"],
        M=totals["M"],
        key=totals["key"],
        batches=batch_rows,
        waiting=waiting,
        services=SERVICES,
        service_labels=views.SERVICE_LABELS,
    )


# --------------------------------------------------------------------------------------------
# Queue and arrivals


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _queue(
    request: Request,
    *,
    statuses: tuple[str, ...],
    title: str,
    template: str,
    fixed_allocated: bool,
) -> Response:
    principal, scope = _guard(request)
    q = request.query_params
    filters = {
        "status": q.get("status", ""),
        "entry_state": q.get("entry_state", ""),
        "allocated_state": q.get("allocated_state", ""),
        "tier": q.get("tier", ""),
        "need": q.get("need", ""),
        "sort": q.get("sort", "priority"),
    }
    chosen = (filters["status"],) if filters["status"] in statuses else statuses
    offset = max(_int_or_none(q.get("offset")) or 0, 0)
    problems: list[tuple[str, str]] = []
    app = _app(request)
    page_rows: dashboard.QueuePage | None = None
    with app.tx() as session:
        try:
            page_rows = dashboard.queue_page(
                session,
                principal.actor,
                registry_scope(scope),
                statuses=chosen,
                entry_state=filters["entry_state"] or None,
                allocated_state=filters["allocated_state"] or None,
                tier=_int_or_none(filters["tier"]),
                need=filters["need"] or None,
                sort=filters["sort"] if filters["sort"] in dashboard.QUEUE_SORTS else "priority",
                offset=offset,
            )
        except InputError as exc:
            problems.append(("error", str(exc)))
        if page_rows is not None and page_rows.rows:
            audit_read(
                session, principal.actor, "case", [r.id for r in page_rows.rows], action="list"
            )
    today = _today()
    query = {k: v for k, v in filters.items() if v}
    context: dict[str, Any] = {
        "title": title,
        "filters": filters,
        "statuses": statuses,
        "page": page_rows,
        "today": today,
        "services": SERVICES,
        "service_labels": views.SERVICE_LABELS,
        "states": sorted(known_states()),
        "sorts": dashboard.QUEUE_SORTS,
        "fixed_allocated": fixed_allocated,
        "prev_url": None,
        "next_url": None,
        "flashes": problems,
        "base_path": request.url.path,
    }
    if page_rows is not None:
        if page_rows.offset > 0:
            context["prev_url"] = "?" + urlencode(
                {**query, "offset": max(page_rows.offset - page_rows.limit, 0)}
            )
        if page_rows.offset + page_rows.limit < page_rows.total:
            context["next_url"] = "?" + urlencode(
                {**query, "offset": page_rows.offset + page_rows.limit}
            )
    name = "queue_table.html" if request.headers.get("HX-Request") else template
    return _render(request, principal, name, 200, **context)


@router.get(
    "/queue",
    dependencies=[Depends(PagePermission(Permission.cases_list))],
    response_class=HTMLResponse,
)
@page
def queue(request: Request) -> Response:
    return _queue(
        request,
        statuses=(*dashboard.WAITING_STATUSES, "allocated", "transfer_scheduled", "transferred"),
        title="Queue",
        template="queue.html",
        fixed_allocated=False,
    )


@router.get(
    "/arrivals",
    dependencies=[Depends(PagePermission(Permission.cases_list))],
    response_class=HTMLResponse,
)
@page
def arrivals(request: Request) -> Response:
    return _queue(
        request,
        statuses=("allocated", "transfer_scheduled", "transferred", "arrived"),
        title="Arrivals",
        template="queue.html",
        fixed_allocated=True,
    )


# --------------------------------------------------------------------------------------------
# One case


@router.get(
    "/cases/{case_id}",
    dependencies=[Depends(PagePermission(Permission.cases_read))],
    response_class=HTMLResponse,
)
@page
def case_page(request: Request, case_id: str) -> Response:
    principal, scope = _guard(request)
    app = _app(request)
    fields = visible_fields(principal.role, "persons")
    personal = bool(fields & {"given_names", "family_name", "birth_date"})
    special = "vulnerabilities" in fields
    with _errors_as_pages(request, principal), app.tx() as session:
        detail = dashboard.case_detail(session, principal.actor, case_id, registry_scope(scope))
        if personal or special:
            audit_read(session, principal.actor, "person", [p.id for p in detail.persons])
        audit_read(session, principal.actor, "case", [case_id])
        case = detail.case
        members = [
            {
                "id": p.id,
                "name": (
                    " ".join(x for x in (p.given_name, p.family_name) if x) or "–"
                    if personal
                    else None
                ),
                "birth_date": p.birth_date if personal else None,
                "age": p.age,
                "age_uncertain": p.age_uncertain,
                "sex": p.sex if "sex" in fields else None,
                "nationality": p.nationality,
                "vulnerabilities": list(p.vulnerabilities or []) if special else None,
                "erased": p.erased_at is not None,
                "screenings": [
                    {
                        "at": s.assessed_at,
                        "by": s.assessed_by,
                        "categories": list(s.categories or []),
                        "trafficking": list(s.trafficking_indicators or []),
                        "safety": s.place_of_safety_referral,
                        "advice": s.advice_and_support,
                        "age_assessed": s.age_assessed,
                    }
                    for s in detail.screenings.get(p.id, [])
                ]
                if special
                else [],
            }
            for p in detail.persons
        ]
        events = [
            {
                "at": e.at,
                "from": e.from_status,
                "to": e.to_status,
                "by": e.by,
                "role": e.role,
                "reason": e.reason,
            }
            for e in detail.events
        ]
        links = [
            {"state": link.state, "relation": link.relation, "status": link.status}
            for link in detail.family_links
        ]
        reasons = views.reason_list(detail.assignment.reasons) if detail.assignment else []
        transfer = detail.transfer
        transfer_view = (
            {
                "scheduled_for": transfer.scheduled_for,
                "deadline": transfer.deadline,
                "status": transfer.status,
                "transferred_at": transfer.transferred_at,
                "arrived_at": transfer.arrived_at,
            }
            if transfer
            else None
        )
        case_view = {
            "id": case.id,
            "entry_state": case.entry_state,
            "registered_on": case.registered_on,
            "status": case.status,
            "version": case.version,
            "tier": case.tier,
            "needs": {k: v for k, v in (case.needs or {}).items() if v},
            "priority_reason": case.priority_reason,
            "allocated_to": case.allocated_to,
            "allocated_state": case.allocated_state,
            "allocated_on": case.allocated_on,
            "transfer_deadline": case.transfer_deadline,
            "overdue": bool(
                case.transfer_deadline
                and case.transfer_deadline < _today()
                and case.status in ("allocated", "transfer_scheduled")
            ),
            "care": {
                "reception_place": case.reception_place if "reception_place" in fields else None,
                "medical_needs": case.medical_needs if "medical_needs" in fields else None,
                "child_protection_referral": case.child_protection_referral,
            },
        }
        linked = list(detail.linked_cases)
    rules = workflow_rules()
    moves = []
    if is_allowed(principal.role, Permission.transitions_create):
        for target in next_states(str(case_view["status"]), principal.role.value):
            if target in ("allocated", "transfer_scheduled", "transferred", "arrived"):
                continue  # these go through batches and transfers, with their own forms
            step = rules.transition(str(case_view["status"]), target)
            moves.append(
                {
                    "forward": target in _MAIN_LINE
                    and str(case_view["status"]) in _MAIN_LINE
                    and _MAIN_LINE.index(target) > _MAIN_LINE.index(str(case_view["status"])),
                    "to": target,
                    "reason_required": bool(step and step.reason_required),
                    "label": rules.states.get(target, target),
                }
            )
    can_transfer = is_allowed(principal.role, Permission.transfers_update)
    return _render(
        request,
        principal,
        "case.html",
        title=f"Case {case_id}",
        case=case_view,
        members=members,
        personal=personal,
        special=special,
        events=events,
        links=links,
        linked=linked,
        reasons=reasons,
        transfer=transfer_view,
        moves=moves,
        can_screen=is_allowed(principal.role, Permission.screenings_create)
        and case_view["status"] in ("registered", "screened"),
        can_schedule=can_transfer
        and principal.role is Role.registrar
        and case_view["status"] == "allocated",
        can_transferred=can_transfer
        and principal.role is Role.registrar
        and case_view["status"] == "transfer_scheduled",
        can_arrive=can_transfer
        and principal.role is Role.caseworker
        and case_view["status"] == "transferred",
        service_labels=views.SERVICE_LABELS,
    )


def _case_action(
    request: Request,
    case_id: str,
    csrf: str,
    action: Callable[[Any, Principal, str], None],
    done: str,
) -> Response:
    principal, scope = _guard(request)
    check_csrf(request, principal, csrf)
    app = _app(request)
    try:
        with _errors_as_pages(request, principal), app.tx() as session:
            action(session, principal, registry_scope(scope))
    except (TransitionError, ConflictError, StaleVersionError, InputError) as exc:
        return _redirect_with_error(f"/cases/{case_id}", str(exc))
    return _redirect(f"/cases/{case_id}?done={done}")


def _redirect_with_error(url: str, message: str) -> Response:
    # The message is shown from a short-lived cookie, never put into the URL.
    response = _redirect(url)
    response.set_cookie(
        FLASH_COOKIE, message[:500], max_age=30, httponly=True, samesite="strict", path="/"
    )
    return response


@router.post(
    "/cases/{case_id}/move", dependencies=[Depends(PagePermission(Permission.transitions_create))]
)
@page
def case_move(
    request: Request,
    case_id: str,
    to: Annotated[str, Form()],
    version: Annotated[int, Form()],
    csrf: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    def act(session: Any, principal: Principal, scope: str) -> None:
        transition(
            session,
            principal.actor,
            case_id,
            to,
            reason=reason.strip() or None,
            expected_version=version,
            scope=scope,
        )

    return _case_action(request, case_id, csrf, act, "moved")


@router.post(
    "/cases/{case_id}/transfer", dependencies=[Depends(PagePermission(Permission.transfers_update))]
)
@page
def case_transfer(
    request: Request,
    case_id: str,
    step: Annotated[str, Form()],
    version: Annotated[int, Form()],
    csrf: Annotated[str, Form()] = "",
    scheduled_for: Annotated[str, Form()] = "",
) -> Response:
    def act(session: Any, principal: Principal, scope: str) -> None:
        if step == "schedule":
            try:
                day = date.fromisoformat(scheduled_for)
            except ValueError:
                raise InputError(f"'{scheduled_for}' is not a date; use YYYY-MM-DD") from None
            schedule_transfer(
                session, principal.actor, case_id, day, expected_version=version, scope=scope
            )
        elif step == "transferred":
            confirm_transferred(
                session, principal.actor, case_id, expected_version=version, scope=scope
            )
        elif step == "arrived":
            confirm_arrival(
                session, principal.actor, case_id, expected_version=version, scope=scope
            )
        else:
            raise InputError(f"unknown transfer step '{step}'")

    done = "arrived" if step == "arrived" else "transfer"
    return _case_action(request, case_id, csrf, act, done)


# --------------------------------------------------------------------------------------------
# Registration and screening (registrars)

_CATEGORIES = tuple(vulnerability_categories())


def _member_values(form: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        out.append(
            {
                "given_name": str(form.get(f"m{i}-given_name", "")).strip(),
                "family_name": str(form.get(f"m{i}-family_name", "")).strip(),
                "birth_date": str(form.get(f"m{i}-birth_date", "")).strip(),
                "age": str(form.get(f"m{i}-age", "")).strip(),
                "age_uncertain": form.get(f"m{i}-age_uncertain") == "on",
                "sex": str(form.get(f"m{i}-sex", "")).strip(),
                "nationality": str(form.get(f"m{i}-nationality", "")).strip(),
                "vulnerabilities": [str(v) for v in form.getlist(f"m{i}-vulnerabilities")]
                if hasattr(form, "getlist")
                else [],
                "document_kind": str(form.get(f"m{i}-document_kind", "")).strip(),
                "document_number": str(form.get(f"m{i}-document_number", "")).strip(),
            }
        )
    return out


def _registration(
    principal: Principal, form: Mapping[str, Any], members: list[dict[str, Any]]
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "entry_state": principal.state,
        "registered_on": str(form.get("registered_on", "")).strip() or None,
        "members": [],
        "care": {
            "reception_place": str(form.get("reception_place", "")).strip() or None,
            "medical_needs": str(form.get("medical_needs", "")).strip() or None,
            "child_protection_referral": form.get("child_protection_referral") == "on",
        },
    }
    if data["registered_on"] is None:
        del data["registered_on"]
    for i, m in enumerate(members):
        person: dict[str, Any] = {"id": f"p{i + 1}"}
        if m["given_name"]:
            person["given_name"] = m["given_name"]
        if m["family_name"]:
            person["family_name"] = m["family_name"]
        if m["birth_date"]:
            person["birth_date"] = m["birth_date"]
        if m["age"]:
            person["age"] = int(m["age"]) if m["age"].lstrip("-").isdigit() else m["age"]
        if m["age_uncertain"]:
            person["age_uncertain"] = True
        if m["sex"]:
            person["sex"] = m["sex"]
        if m["nationality"]:
            person["nationality"] = m["nationality"]
        if m["vulnerabilities"]:
            person["vulnerabilities"] = m["vulnerabilities"]
        if m["document_number"]:
            person["documents"] = [
                {
                    "kind": m["document_kind"] or "passport",
                    "issuing_state": m["nationality"] or "XXX",
                    "number": m["document_number"],
                }
            ]
        data["members"].append(person)
    link_state = str(form.get("link_state", "")).strip()
    if link_state:
        data["family_links"] = [
            {
                "state": link_state,
                "relation": str(form.get("link_relation", "")).strip(),
                "status": str(form.get("link_status", "")).strip(),
            }
        ]
    return data


def _field_of(pointer: str) -> str:
    """The form field of a JSON Pointer of the registration body."""
    parts = [p for p in pointer.split("/") if p]
    if len(parts) >= 3 and parts[0] == "members":
        field = parts[2]
        if field == "documents":
            field = "document_number"
        return f"m{parts[1]}-{field}"
    if parts and parts[0] == "care" and len(parts) > 1:
        return parts[1]
    if parts and parts[0] == "family_links":
        return "link_" + (parts[2] if len(parts) > 2 else "state")
    return parts[0] if parts else "form"


# A form sent back with its problems answers 200, not 422: the page is the normal result of
# an interaction a person makes (browsers log a 4xx page as a console error), and the
# problems are marked at each field (aria-invalid, role=alert). The API answers 422.
def _register_page(
    request: Request,
    principal: Principal,
    *,
    values: Mapping[str, Any],
    members: list[dict[str, Any]],
    errors: Mapping[str, list[str]],
    status: int = 200,
) -> Response:
    return _render(
        request,
        principal,
        "register.html",
        status,
        title="Register a family",
        values=values,
        members=members,
        errors=errors,
        categories=_CATEGORIES,
        category_text={k: v[0] for k, v in vulnerability_categories().items()},
        states=sorted(known_states()),
        relations=("spouse", "partner", "child", "parent", "sibling", "relative"),
        link_statuses=("beneficiary", "applicant", "resident"),
        today=_today(),
    )


@router.get(
    "/register",
    dependencies=[Depends(PagePermission(Permission.cases_create))],
    response_class=HTMLResponse,
)
@page
def register_form(request: Request) -> Response:
    principal, _ = _guard(request)
    return _register_page(request, principal, values={}, members=_member_values({}, 1), errors={})


@router.post(
    "/register",
    dependencies=[Depends(PagePermission(Permission.cases_create))],
    response_class=HTMLResponse,
)
@page
async def register_submit(request: Request) -> Response:
    principal, _ = _guard(request)
    form = await request.form()
    check_csrf(request, principal, str(form.get("csrf", "")))
    count = min(max(_int_or_none(str(form.get("member_count", "1"))) or 1, 1), 20)
    members = _member_values(form, count)
    errors: dict[str, list[str]] = {}
    if not principal.state:
        errors["form"] = ["your account has no entry state; ask an administrator"]
    data = _registration(principal, form, members)
    app = _app(request)
    key = str(form.get("idempotency_key", "")) or None
    if not errors:
        try:
            with app.tx() as session:
                result = register_case(
                    session,
                    principal.actor,
                    data,
                    fingerprint_key=app.settings.fingerprint_key_bytes(),
                    idempotency_key=key,
                )
            return _redirect(f"/cases/{result.case_id}?done=registered")
        except ValidationError as exc:
            for pointer, message in exc.problems:
                errors.setdefault(_field_of(pointer), []).append(message)
        except InputError as exc:
            errors.setdefault("form", []).append(str(exc))
    values = {k: str(v) for k, v in form.items() if not k.startswith("m")}
    values["idempotency_key"] = key or secrets.token_urlsafe(16)
    return _register_page(
        request, principal, values=values, members=members, errors=errors, status=200
    )


@router.get(
    "/cases/{case_id}/persons/{person_id}/screen",
    dependencies=[Depends(PagePermission(Permission.screenings_create))],
    response_class=HTMLResponse,
)
@page
def screen_form(request: Request, case_id: str, person_id: str) -> Response:
    principal, scope = _guard(request)
    app = _app(request)
    with _errors_as_pages(request, principal), app.tx() as session:
        detail = dashboard.case_detail(session, principal.actor, case_id, registry_scope(scope))
        person = next((p for p in detail.persons if p.id == person_id), None)
        if person is None:
            raise NotFoundError("person", person_id)
        audit_read(session, principal.actor, "person", [person_id])
        who = {
            "id": person.id,
            "name": " ".join(x for x in (person.given_name, person.family_name) if x) or person.id,
            "age": person.age,
            "age_uncertain": person.age_uncertain,
            "declared": list(person.vulnerabilities or []),
        }
    return _render(
        request,
        principal,
        "screen.html",
        title=f"Screening of {who['name']}",
        case_id=case_id,
        person=who,
        categories=_CATEGORIES,
        category_text={k: v[0] for k, v in vulnerability_categories().items()},
        indicators=TRAFFICKING_INDICATORS,
        errors={},
        values={},
    )


#: Trafficking indicators a registrar can tick (UNODC / IOM indicator lists, shortened); any
#: one of them leads to an immediate place-of-safety referral.
TRAFFICKING_INDICATORS = (
    "documents held by someone else",
    "debt bondage or owes money for the journey",
    "controlled movement or communication",
    "signs of physical or sexual abuse",
    "forced labour or sexual exploitation described",
    "recruited with false promises",
)


@router.post(
    "/cases/{case_id}/persons/{person_id}/screen",
    dependencies=[Depends(PagePermission(Permission.screenings_create))],
    response_class=HTMLResponse,
)
@page
async def screen_submit(request: Request, case_id: str, person_id: str) -> Response:
    principal, scope = _guard(request)
    form = await request.form()
    check_csrf(request, principal, str(form.get("csrf", "")))
    categories = [str(c) for c in form.getlist("categories")]
    indicators = [str(c) for c in form.getlist("trafficking")]
    unhcr = [c.strip() for c in str(form.get("unhcr", "")).split(",") if c.strip()]
    age_text = str(form.get("age_assessed", "")).strip()
    errors: dict[str, list[str]] = {}
    age_assessed = None
    if age_text:
        if age_text.isdigit() and int(age_text) <= 130:
            age_assessed = int(age_text)
        else:
            errors["age_assessed"] = [f"'{age_text}' is not an age; give whole years, 0 to 130"]
    app = _app(request)
    if not errors:
        try:
            with _errors_as_pages(request, principal), app.tx() as session:
                record_screening(
                    session,
                    principal.actor,
                    person_id,
                    categories=categories,
                    unhcr=unhcr,
                    trafficking_indicators=indicators,
                    advice_and_support=str(form.get("advice", "")).strip() or None,
                    age_assessed=age_assessed,
                    scope=registry_scope(scope),
                )
            return _redirect(f"/cases/{case_id}?done=screened")
        except ValidationError as exc:
            for pointer, message in exc.problems:
                errors.setdefault(pointer.strip("/").split("/")[0] or "form", []).append(message)
        except InputError as exc:
            errors.setdefault("form", []).append(str(exc))
    return _render(
        request,
        principal,
        "screen.html",
        200,
        title="Screening",
        case_id=case_id,
        person={
            "id": person_id,
            "name": person_id,
            "age": None,
            "age_uncertain": False,
            "declared": [],
        },
        categories=_CATEGORIES,
        category_text={k: v[0] for k, v in vulnerability_categories().items()},
        indicators=TRAFFICKING_INDICATORS,
        errors=errors,
        values={
            "categories": categories,
            "trafficking": indicators,
            "unhcr": ", ".join(unhcr),
            "age_assessed": age_text,
            "advice": str(form.get("advice", "")),
        },
    )


# --------------------------------------------------------------------------------------------
# Allocation batches (coordinators)


def _batch_view(document: Mapping[str, Any], limit: int = 200) -> dict[str, Any]:
    assignments = document.get("assignments", [])
    placed = [a for a in assignments if a.get("destination")]
    states = []
    for row in document.get("states") or document.get("destinations", []):
        if row.get("fair_share") is None and not row.get("placed"):
            continue
        states.append(
            {
                "state": row.get("id"),
                "name": views.state_name(str(row.get("state") or row.get("id"))),
                "before": row.get("before"),
                "placed": row.get("placed"),
                "after": row.get("after"),
                "fair_share": row.get("fair_share"),
                "deviation": row.get("deviation"),
                "within": row.get("within_bound"),
                "note": row.get("bound_note"),
            }
        )
    return {
        "cases": len(assignments),
        "placed_cases": len(placed),
        "placed_persons": sum(int(a.get("persons", 0)) for a in placed),
        "waiting_cases": len(assignments) - len(placed),
        "states": states,
        "assignments": assignments[:limit],
        "more": max(len(assignments) - limit, 0),
        "objective": document.get("objective", {}),
    }


@router.get(
    "/batches",
    dependencies=[Depends(PagePermission(Permission.batches_preview))],
    response_class=HTMLResponse,
)
@page
def batches(request: Request) -> Response:
    principal, _ = _guard(request)
    app = _app(request)
    with app.tx(readonly=True) as session:
        recent = [
            {
                "id": b.id,
                "at": b.created_at,
                "by": b.coordinator,
                "seed": b.seed,
                "summary": b.summary or {},
            }
            for b in dashboard.recent_batches(session, 10)
        ]
    return _render(
        request,
        principal,
        "batches.html",
        title="Allocation batches",
        recent=recent,
        preview=None,
        seed=secrets.randbelow(2**31),
    )


@router.post(
    "/batches/preview",
    dependencies=[Depends(PagePermission(Permission.batches_preview))],
    response_class=HTMLResponse,
)
@page
def batch_preview(
    request: Request,
    seed: Annotated[int, Form()] = 0,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    principal, _ = _guard(request)
    check_csrf(request, principal, csrf)
    app = _app(request)
    flashes: list[tuple[str, str]] = []
    preview = None
    try:
        with app.tx(readonly=True) as session:
            result = preview_batch(session, principal.actor, seed)
            preview = _batch_view(result.document)
            preview["case_ids"] = ",".join(result.case_ids)
            preview["held_back"] = list(result.held_back)
    except InputError as exc:
        flashes.append(("error", str(exc)))
    name = "batch_preview.html" if request.headers.get("HX-Request") else "batches.html"
    return _render(
        request,
        principal,
        name,
        title="Allocation batches",
        recent=[],
        preview=preview,
        seed=seed,
        flashes=flashes,
        can_commit=is_allowed(principal.role, Permission.batches_commit),
    )


@router.post("/batches/commit", dependencies=[Depends(PagePermission(Permission.batches_commit))])
@page
def batch_commit(
    request: Request,
    seed: Annotated[int, Form()],
    case_ids: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    principal, _ = _guard(request)
    check_csrf(request, principal, csrf)
    app = _app(request)
    ids = [c for c in case_ids.split(",") if c]
    try:
        with app.tx() as session:
            commit_batch(session, principal.actor, seed, ids or None)
    except InputError as exc:
        return _redirect_with_error("/batches", f"the batch was not committed: {exc}")
    return _redirect("/batches?done=committed")


# --------------------------------------------------------------------------------------------
# Capacities, audit log, users


@router.get(
    "/capacities",
    dependencies=[Depends(PagePermission(Permission.capacities_read))],
    response_class=HTMLResponse,
)
@page
def capacities(request: Request) -> Response:
    principal, scope = _guard(request)
    app = _app(request)
    with app.tx(readonly=True) as session:
        rows = [
            {
                "id": c.destination_id,
                "state": c.state,
                "name": views.state_name(c.state),
                "free": c.free,
                "services": c.services,
                "participating": c.participating,
                "version": c.version,
                "updated_by": c.updated_by,
                "updated_at": c.updated_at,
            }
            for c in list_capacities(session, principal.actor, registry_scope(scope))
        ]
    return _render(
        request,
        principal,
        "capacities.html",
        title="Capacities",
        rows=rows,
        services=SERVICES,
        service_labels=views.SERVICE_LABELS,
        can_edit=is_allowed(principal.role, Permission.capacities_update),
    )


@router.post(
    "/capacities/{destination_id}",
    dependencies=[Depends(PagePermission(Permission.capacities_update))],
)
@page
async def capacity_save(request: Request, destination_id: str) -> Response:
    principal, scope = _guard(request)
    form = await request.form()
    check_csrf(request, principal, str(form.get("csrf", "")))
    try:
        free = int(str(form.get("free", "")))
        services = {s: int(str(form.get(s, "0") or "0")) for s in SERVICES}
        version = int(str(form.get("version", "")))
    except ValueError:
        return _redirect_with_error("/capacities", "places must be whole numbers, 0 or more")
    app = _app(request)
    try:
        with _errors_as_pages(request, principal), app.tx() as session:
            set_capacity(
                session,
                principal.actor,
                destination_id,
                free=free,
                services=services,
                expected_version=version,
                scope=registry_scope(scope),
            )
    except InputError as exc:
        return _redirect_with_error("/capacities", str(exc))
    return _redirect("/capacities?done=capacity")


@router.get(
    "/audit",
    dependencies=[Depends(PagePermission(Permission.audit_read))],
    response_class=HTMLResponse,
)
@page
def audit(request: Request) -> Response:
    principal, _ = _guard(request)
    q = request.query_params
    app = _app(request)
    filters = {k: q.get(k, "") for k in ("actor", "action", "resource", "resource_id")}
    before = _int_or_none(q.get("before"))
    with app.tx() as session:
        events = audit_log(
            session,
            actor_name=filters["actor"] or None,
            action=filters["action"] or None,
            resource=filters["resource"] or None,
            resource_id=filters["resource_id"] or None,
            before_id=before,
            newest_first=True,
        )
        rows = [
            {
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "role": e.role,
                "action": e.action,
                "resource": e.resource,
                "resource_id": e.resource_id,
                "state": e.state,
            }
            for e in events
        ]
        audit_read(session, principal.actor, "audit", [], action="search")
    older = None
    if len(rows) == 100:
        older = "?" + urlencode(
            {**{k: v for k, v in filters.items() if v}, "before": rows[-1]["id"]}
        )
    return _render(
        request, principal, "audit.html", title="Audit log", rows=rows, filters=filters, older=older
    )


@router.get(
    "/users",
    dependencies=[Depends(PagePermission(Permission.users_manage))],
    response_class=HTMLResponse,
)
@page
def users(request: Request) -> Response:
    principal, _ = _guard(request)
    app = _app(request)
    with app.tx(readonly=True) as session:
        rows = [
            {"username": u.username, "role": u.role, "state": u.state, "active": u.active}
            for u in dashboard.list_users(session)
        ]
    return _render(request, principal, "users.html", title="Users", rows=rows)
