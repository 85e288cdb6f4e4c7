"""The audit trail: every change, and every read of personal data, in the same transaction.

Accountability (Regulation (EU) 2016/679 Art. 5(2)) and the logging of processing
operations (Directive (EU) 2016/680 Art. 25, as good practice) need a trail that cannot be
rewritten: ``audit_events`` is append-only, enforced by database triggers. Events carry ids,
actions and counts, never names, documents or vulnerabilities (data minimisation,
Art. 5(1)(c)): the trail itself must not become a second copy of the register.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairshare.errors import InputError
from fairshare.registry.models import AuditEvent, utcnow
from fairshare.registry.scopes import Actor

__all__ = ["MAX_PAGE", "audit_log", "audit_read", "record_event"]

MAX_PAGE = 1000
"""The largest page any listing returns."""


def record_event(
    session: Session,
    actor: Actor,
    action: str,
    resource: str,
    resource_id: str | None = None,
    *,
    state: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event (flushed with the caller's transaction, never on its own).

    ``detail`` must not contain personal data: ids, counts, codes and statuses only.
    """
    event = AuditEvent(
        at=utcnow(),
        actor=actor.username,
        role=actor.role,
        action=action,
        resource=resource,
        resource_id=resource_id,
        state=state if state is not None else actor.state,
        detail=dict(detail or {}),
    )
    session.add(event)
    return event


def audit_read(
    session: Session, actor: Actor, resource: str, ids: Iterable[str], *, action: str = "read"
) -> AuditEvent:
    """Record that ``actor`` read the personal data of ``ids`` (one event for a whole page).

    The API calls this in the same transaction as the read, so that a read that is served is
    a read that is logged. ``action`` may be ``read``, ``list``, ``search`` or ``export``.
    """
    listed = [str(i) for i in ids]
    single = listed[0] if len(listed) == 1 else None
    return record_event(
        session,
        actor,
        f"{resource}.{action}",
        resource,
        single,
        detail={"ids": listed, "count": len(listed)},
    )


def audit_log(
    session: Session,
    *,
    actor_name: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    resource_id: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: int | None = None,
    before_id: int | None = None,
    newest_first: bool = False,
    limit: int = 100,
) -> Sequence[AuditEvent]:
    """Audit events matching every given filter, oldest (or newest) first, keyset-paginated.

    Pass the last ``id`` of a page as ``after_id`` (oldest first) or ``before_id`` (newest
    first) to get the next page. ``action`` matches exactly, or as a prefix when it ends with
    ``.`` or ``*`` (``case.*``).
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit {limit} is out of range; use 1 to {MAX_PAGE}")
    order = AuditEvent.id.desc() if newest_first else AuditEvent.id
    query = select(AuditEvent).order_by(order).limit(limit)
    if actor_name is not None:
        query = query.where(AuditEvent.actor == actor_name)
    if action is not None:
        if action.endswith(("*", ".")):
            query = query.where(AuditEvent.action.startswith(action.rstrip("*"), autoescape=True))
        else:
            query = query.where(AuditEvent.action == action)
    if resource is not None:
        query = query.where(AuditEvent.resource == resource)
    if resource_id is not None:
        query = query.where(AuditEvent.resource_id == resource_id)
    if state is not None:
        query = query.where(AuditEvent.state == state)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    if after_id is not None:
        query = query.where(AuditEvent.id > after_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return session.scalars(query).all()
