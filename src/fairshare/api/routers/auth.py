"""Login (OAuth2 password flow), logout, who am I, and the health check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select, text

from fairshare.api.deps import (
    AUTHENTICATED,
    LOGOUT_ACTION,
    PUBLIC,
    TOKEN_RESOURCE,
    AppState,
    Principal,
    PrincipalDep,
    StateDep,
    now_utc,
)
from fairshare.api.errors import ApiError
from fairshare.api.permissions import GRANTS
from fairshare.api.schemas import Health, Me, TokenOut
from fairshare.api.security import (
    LoginAttempt,
    LoginThrottle,
    issue_token,
    login_locked_until,
    needs_rehash,
    password_hasher,
    retry_after_seconds,
    verify_password,
)
from fairshare.api.settings import Settings
from fairshare.registry.models import LoginAttempt as LoginRow
from fairshare.registry.models import User
from fairshare.registry.scopes import Actor
from fairshare.registry.services import record_event, record_login_attempt

router = APIRouter(tags=["auth"])

_BAD_LOGIN = "wrong username or password"


def _attempts(rows: list[LoginRow]) -> list[LoginAttempt]:
    return [LoginAttempt(r.at, r.success) for r in rows]


def _recent(session: Any, settings: Settings, now: Any, **where: str) -> list[LoginAttempt]:
    since = LoginThrottle.for_username(settings).relevant_since(now)
    query = select(LoginRow).where(LoginRow.at >= since).order_by(LoginRow.id)
    for column, value in where.items():
        query = query.where(getattr(LoginRow, column) == value)
    return _attempts(list(session.scalars(query)))


def authenticate(app: AppState, username: str, password: str, client: str) -> tuple[str, datetime]:
    """Check a login (throttle first, then the password) and issue a token and its expiry.

    Raises :class:`ApiError` 429 (with ``Retry-After``) while locked out and 401 for a wrong
    username or password (the same for unknown users, verified against a dummy hash). Every
    checked attempt is recorded. Shared by the API and the dashboard's login form.
    """
    settings = app.settings
    # A NUL cannot be stored in PostgreSQL text: such a name is no user's (U+FFFD instead), so
    # the attempt is checked, throttled and recorded like any other wrong login.
    username = username.replace("\x00", "\ufffd")[:64]
    client = client.replace("\x00", "\ufffd")[:64]
    now = now_utc()
    issued: tuple[str, datetime] | None = None
    with app.tx() as session:
        locked = login_locked_until(
            settings,
            _recent(session, settings, now, username=username),
            _recent(session, settings, now, client=client),
            now,
        )
        if locked is not None:
            wait = retry_after_seconds(locked, now)
            raise ApiError(
                429,
                f"too many failed logins; try again in {wait} seconds",
                headers={"Retry-After": str(wait)},
            )
        user = session.scalar(select(User).where(User.username == username))
        usable = user is not None and user.active
        ok = verify_password(user.password_hash if usable and user else None, password)
        record_login_attempt(session, username, client, ok)
        if ok and user is not None:
            if needs_rehash(user.password_hash):
                user.password_hash = password_hasher().hash(password)
            issued = issue_token(settings, user.username, user.role, user.state, now=now)
            actor = Actor(user.username, user.role, user.state)
            record_event(session, actor, "auth.login", "user", user.username)
    if issued is None:
        raise ApiError(401, _BAD_LOGIN, headers={"WWW-Authenticate": "Bearer"})
    return issued


def revoke(app: AppState, principal: Principal) -> None:
    """Log a token out until it expires (its id goes into the append-only audit log)."""
    with app.tx() as session:
        record_event(
            session,
            principal.actor,
            LOGOUT_ACTION,
            TOKEN_RESOURCE,
            principal.claims.jti,
            detail={"exp": principal.claims.exp},
        )


@router.post(
    "/auth/token",
    response_model=TokenOut,
    dependencies=[Depends(PUBLIC)],
    responses={401: {"description": _BAD_LOGIN}, 429: {"description": "too many failures"}},
)
def login(
    request: Request,
    app: StateDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> Any:
    """Exchange a username and password for a bearer token (throttled per user and address)."""
    client = request.client.host if request.client else "unknown"
    token, expires = authenticate(app, form.username, form.password, client)
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": max(int((expires - now_utc()).total_seconds()), 0),
    }


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(AUTHENTICATED)],
)
def logout(app: StateDep, principal: PrincipalDep) -> Response:
    """Revoke the token until it expires (its id is recorded in the append-only audit log)."""
    revoke(app, principal)
    return Response(status_code=204)


@router.get("/me", response_model=Me, dependencies=[Depends(AUTHENTICATED)])
def me(principal: PrincipalDep) -> dict[str, Any]:
    """The caller, their role and state, and every permission they hold with its scope."""
    grants = GRANTS.get(principal.role, {})
    return {
        "username": principal.username,
        "role": principal.role.value,
        "state": principal.state,
        "permissions": {p.value: s.value for p, s in grants.items()},
        "expires_at": principal.claims.expires_at,
    }


@router.get("/health", response_model=Health, dependencies=[Depends(PUBLIC)], tags=["health"])
def health(app: StateDep) -> dict[str, str]:
    """The service is up and its database answers (no authentication, no data)."""
    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.rollback()
    except Exception:
        raise ApiError(503, "the database does not answer") from None
    return {"status": "ok"}
