"""Users and login attempts (the password hashing itself lives in ``fairshare.api.security``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairshare.errors import InputError
from fairshare.registry.audit import record_event
from fairshare.registry.errors import ConflictError, NotFoundError
from fairshare.registry.models import LoginAttempt, User, utcnow
from fairshare.registry.scopes import Actor
from fairshare.workflow import workflow_rules

__all__ = [
    "EXTRA_ROLES",
    "create_user",
    "failed_logins_since",
    "get_user",
    "record_login_attempt",
    "set_user_active",
]

EXTRA_ROLES: tuple[str, ...] = ("capacity_manager", "auditor", "analyst", "admin")
"""Roles beside the workflow's own (``rules/workflow.yaml``)."""


def _roles() -> tuple[str, ...]:
    return tuple(dict.fromkeys((*workflow_rules().roles, *EXTRA_ROLES)))


def create_user(
    session: Session,
    actor: Actor,
    *,
    username: str,
    password_hash: str,
    role: str,
    state: str | None = None,
) -> User:
    """Create a user (``password_hash``: an Argon2 hash made by the API's security module)."""
    if (
        not username
        or len(username) > 64
        or not username.isprintable()
        or username.strip() != username
    ):
        raise InputError("a user name needs 1 to 64 printable characters without outer spaces")
    if role not in _roles():
        raise InputError(f"unknown role '{role}'; use one of {', '.join(_roles())}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(f"user '{username}' already exists; choose another name")
    user = User(
        username=username,
        password_hash=password_hash,
        role=role,
        state=state,
        active=True,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    record_event(
        session, actor, "user.created", "user", username, state=state, detail={"role": role}
    )
    return user


def get_user(session: Session, username: str) -> User | None:
    """The user called ``username``, or ``None``."""
    return session.scalar(select(User).where(User.username == username))


def set_user_active(session: Session, actor: Actor, username: str, active: bool) -> User:
    """Enable or disable a user (audited)."""
    user = get_user(session, username)
    if user is None:
        raise NotFoundError("user", username)
    user.active = active
    record_event(session, actor, "user.enabled" if active else "user.disabled", "user", username)
    return user


def record_login_attempt(session: Session, username: str, client: str, success: bool) -> None:
    """Remember one login attempt (for throttling); never the password."""
    session.add(
        LoginAttempt(username=username[:64], client=client[:64], at=utcnow(), success=success)
    )


def failed_logins_since(
    session: Session, since: datetime, *, username: str | None = None, client: str | None = None
) -> int:
    """How many failed logins for ``username`` and/or from ``client`` since ``since``."""
    query = (
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.at >= since, LoginAttempt.success.is_(False))
    )
    if username is not None:
        query = query.where(LoginAttempt.username == username)
    if client is not None:
        query = query.where(LoginAttempt.client == client)
    return int(session.scalar(query) or 0)
