"""Request dependencies: the database, who is calling, and what they may do.

* :func:`current_principal` checks the bearer token (:mod:`fairshare.api.security`), that it
  was not logged out (a ``auth.logout`` audit event names its ``jti``: the deny-list lives
  in the append-only audit table, so it survives restarts and is shared by every worker),
  and that the user still exists, is active and has the role and state the token says.
* :class:`Require` is the one way a route declares its :class:`Permission`; it checks the
  grant table (:data:`~fairshare.api.permissions.GRANTS`, default deny, 403) and hands the
  route a :class:`Grant` with the scope, mapped to the registry's scope names by
  :func:`registry_scope`. Every route carries a ``Require``, :data:`AUTHENTICATED` or
  :data:`PUBLIC` marker; a test walks the routes and fails on one without.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fairshare.api.errors import ApiError
from fairshare.api.permissions import (
    Permission,
    Role,
    Scope,
    authorize,
    object_allowed,
)
from fairshare.api.security import InvalidToken, TokenClaims, decode_token
from fairshare.api.settings import Settings
from fairshare.registry.db import is_postgresql, session_scope
from fairshare.registry.models import AuditEvent, IdempotencyKey, User, utcnow
from fairshare.registry.scopes import Actor

__all__ = [
    "AUTHENTICATED",
    "PUBLIC",
    "AppState",
    "Grant",
    "Principal",
    "Require",
    "current_principal",
    "if_match",
    "principal_from_token",
    "registry_scope",
]

LOGOUT_ACTION = "auth.logout"
TOKEN_RESOURCE = "token"


@dataclass
class AppState:
    """What the application holds: its settings and database engine."""

    settings: Settings
    engine: Engine

    @contextmanager
    def tx(self, *, readonly: bool = False) -> Iterator[Session]:
        """One transaction (committed at the end of the block, rolled back on error)."""
        with session_scope(self.engine, readonly=readonly) as session:
            yield session


async def app_state(request: Request) -> AppState:
    """The :class:`AppState` of the running application (async: no thread needed)."""
    state: AppState = request.app.state.fairshare
    return state


StateDep = Annotated[AppState, Depends(app_state)]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    username: str
    role: Role
    state: str | None
    claims: TokenClaims

    @property
    def actor(self) -> Actor:
        """The registry's view of the caller."""
        return Actor(self.username, self.role.value, self.state)


oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


# The user's account and whether the token was logged out, in one statement.
_PRINCIPAL_QUERY = select(
    User.active,
    User.role,
    User.state,
    select(AuditEvent.id)
    .where(
        AuditEvent.resource == TOKEN_RESOURCE,
        AuditEvent.resource_id == bindparam("jti"),
        AuditEvent.action == LOGOUT_ACTION,
    )
    .exists(),
).where(User.username == bindparam("sub"))


def principal_from_token(state: AppState, token: str) -> Principal:
    """The caller of ``token``, checked like every request (else :class:`InvalidToken`).

    Signature, expiry and claims (:func:`~fairshare.api.security.decode_token`), not logged
    out, and the user still exists, is active and has the token's role and state. Shared by
    the API (bearer header) and the dashboard (cookie).
    """
    claims = decode_token(state.settings, token)
    params = {"sub": claims.sub, "jti": claims.jti}
    if is_postgresql(state.engine):
        # One statement, no BEGIN/COMMIT around it: a read of committed data, like the
        # read-only transaction it replaces, one round trip instead of three.
        with state.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            row = conn.execute(_PRINCIPAL_QUERY, params).first()
    else:
        with state.tx(readonly=True) as session:
            row = session.execute(_PRINCIPAL_QUERY, params).first()
    if row is not None and row[3]:
        raise InvalidToken("the token was logged out; log in again", "claims")
    if row is None or not row[0] or row[1] != claims.role.value or (row[2] or None) != claims.state:
        raise InvalidToken("the account changed or was disabled; log in again", "claims")
    return Principal(claims.sub, claims.role, claims.state, claims)


def current_principal(
    state: StateDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """The caller of a valid, not logged-out token whose user is still active (else 401)."""
    if not token:
        raise _unauthenticated("log in first: send 'Authorization: Bearer <token>'")
    return principal_from_token(state, token)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def registry_scope(scope: Scope) -> str:
    """The registry's scope name for a grant's scope (the one place this mapping lives).

    ``eu_wide`` is the registry's ``all``; ``aggregates_only`` reaches no record at all, so
    asking for its record scope is an error (callers serve aggregates instead).

    >>> registry_scope(Scope.eu_wide), registry_scope(Scope.own_entry_state)
    ('all', 'own_entry_state')
    """
    mapping = {
        Scope.eu_wide: "all",
        Scope.own_entry_state: "own_entry_state",
        Scope.allocated_to_own_state: "allocated_to_own_state",
        Scope.own_state: "own_state",
    }
    if scope not in mapping:
        raise ApiError(403, "this grant reaches aggregates only, never an individual record")
    return mapping[scope]


@dataclass(frozen=True)
class Grant:
    """A permission the caller holds, with its scope."""

    principal: Principal
    permission: Permission
    scope: Scope

    @property
    def actor(self) -> Actor:
        """The registry's view of the caller."""
        return self.principal.actor

    @property
    def role(self) -> Role:
        """The caller's role."""
        return self.principal.role

    @property
    def registry_scope(self) -> str:
        """The scope as the registry names it (``all`` for EU-wide)."""
        return registry_scope(self.scope)

    def may_see(
        self,
        *,
        entry_state: str | None = None,
        allocated_to: str | None = None,
        state: str | None = None,
    ) -> bool:
        """Whether one record is inside this grant's scope."""
        return object_allowed(
            self.role, self.scope, self.principal.state, entry_state, allocated_to, state
        )


class Require:
    """The dependency that declares and checks a route's permission (403 if not granted)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, principal: PrincipalDep) -> Grant:
        # async: a pure check, not worth a hop to the thread pool.
        return Grant(principal, self.permission, authorize(principal.role, self.permission))

    def __repr__(self) -> str:
        return f"Require({self.permission.value})"


class _Marker:
    """A route that needs no permission: public, or any authenticated user."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self) -> None:
        return None

    def __repr__(self) -> str:
        return self.name


PUBLIC = _Marker("public")
"""Marks a route anyone may call (health, login)."""
AUTHENTICATED = _Marker("authenticated")
"""Marks a route any logged-in user may call (``/me``, logout); it also takes the principal."""


def if_match(value: str | None, *, required: bool = True) -> int | None:
    """The version in an ``If-Match`` header (``"3"`` or ``W/"3"``); 428 if required and absent."""
    if value is None or not value.strip():
        if required:
            raise ApiError(
                428,
                "send If-Match with the ETag you read (GET the record first) so that you do "
                "not overwrite someone else's change",
                errors=[{"pointer": "/If-Match", "in": "header", "message": "missing"}],
            )
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit() or len(text) > 9:
        raise ApiError(
            400,
            f"If-Match {value!r} is not an ETag of this service; use the ETag header you read",
            errors=[{"pointer": "/If-Match", "in": "header", "message": "not a version ETag"}],
        )
    return int(text)


def etag(version: int) -> str:
    """The ETag of a record version."""
    return f'"{version}"'


IfMatch = Annotated[str | None, Header(alias="If-Match", description="ETag read before")]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="A retried request with the same key returns the first response.",
    ),
]


# ------------------------------------------------------------------------------------------
# Idempotency for creating requests the registry does not handle itself (batch commits).


def request_hash(body: Any) -> str:
    """A stable hash of a JSON request body."""
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def idempotent_replay(
    session: Session, actor: Actor, key: str, digest: str
) -> tuple[int, dict[str, Any]] | None:
    """The stored response of an earlier request with ``key``, or ``None`` (then reserve it).

    Reserving inserts the key row in a savepoint; a concurrent request with the same key
    waits (PostgreSQL) or fails the unique constraint, and then replays or gets 409.
    """
    scoped = f"batch:{key}"
    existing = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.actor == actor.username, IdempotencyKey.key == scoped
        )
    )
    if existing is None:
        try:
            with session.begin_nested():
                session.add(
                    IdempotencyKey(
                        actor=actor.username,
                        key=scoped,
                        request_hash=digest,
                        response_status=0,
                        response_body={},
                        created_at=utcnow(),
                    )
                )
            return None
        except IntegrityError:
            existing = session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.actor == actor.username, IdempotencyKey.key == scoped
                )
            )
    if existing is None or not existing.response_status:
        raise ApiError(409, f"a request with Idempotency-Key '{key}' is still being processed")
    if existing.request_hash != digest:
        raise ApiError(
            422,
            f"Idempotency-Key '{key}' was used for a different request; use a new key",
            errors=[{"pointer": "/Idempotency-Key", "in": "header", "message": "reused"}],
        )
    return existing.response_status, dict(existing.response_body)


def idempotent_store(
    session: Session, actor: Actor, key: str, status: int, body: dict[str, Any]
) -> None:
    """Store the response of the request that reserved ``key``."""
    row = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.actor == actor.username, IdempotencyKey.key == f"batch:{key}"
        )
    )
    if row is not None:
        row.response_status = status
        row.response_body = body


def now_utc() -> datetime:
    """The current time (aware, UTC)."""
    return datetime.now(UTC)
