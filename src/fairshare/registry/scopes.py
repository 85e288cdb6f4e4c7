"""Who is acting, and which records they may see: the scope filters of the registry.

The permission *table* (which role may do what, in which scope) belongs to the API
(``fairshare.api.permissions``). This module only turns a scope name into a SQL filter, so
that list, search, export and single-record reads all apply the same rule (data protection
by design and by default, Regulation (EU) 2016/679 Art. 25):

* ``own_entry_state``: cases registered in the actor's state (registrars);
* ``allocated_to_own_state``: cases allocated to the actor's state (caseworkers of the
  receiving state);
* ``own_state``: either of the two for cases; the state's own destinations (the state and
  its regions) for capacities (capacity managers);
* ``all``: no restriction (coordinator, auditor, admin).

A scoped actor without a state sees nothing (default deny).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true

from fairshare.errors import InputError
from fairshare.registry.models import Capacity, Case, Person

__all__ = [
    "SCOPES",
    "Actor",
    "capacities_query",
    "capacity_scope_filter",
    "case_scope_filter",
    "cases_query",
    "persons_query",
]

SCOPES: tuple[str, ...] = ("own_entry_state", "allocated_to_own_state", "own_state", "all")


@dataclass(frozen=True)
class Actor:
    """The person acting: their user name, role and (for state-bound roles) state code."""

    username: str
    role: str
    state: str | None = None


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise InputError(f"unknown scope '{scope}'; use one of {', '.join(SCOPES)}")


def case_scope_filter(actor: Actor, scope: str) -> ColumnElement[bool]:
    """The SQL condition on :class:`~fairshare.registry.models.Case` for ``scope``."""
    _check_scope(scope)
    if scope == "all":
        return true()
    if not actor.state:
        return false()
    own_entry = Case.entry_state == actor.state
    own_allocated = and_(Case.allocated_state.is_not(None), Case.allocated_state == actor.state)
    if scope == "own_entry_state":
        return own_entry
    if scope == "allocated_to_own_state":
        return own_allocated
    return or_(own_entry, own_allocated)


def capacity_scope_filter(actor: Actor, scope: str) -> ColumnElement[bool]:
    """The SQL condition on :class:`~fairshare.registry.models.Capacity` for ``scope``.

    Every scope but ``all`` means the actor's own state and its regions.
    """
    _check_scope(scope)
    if scope == "all":
        return true()
    if not actor.state:
        return false()
    return or_(Capacity.destination_id == actor.state, Capacity.parent == actor.state)


def cases_query(actor: Actor, scope: str) -> Select[Case]:
    """``SELECT`` of the cases ``actor`` may see under ``scope``, ordered by id."""
    return select(Case).where(case_scope_filter(actor, scope)).order_by(Case.id)


def persons_query(actor: Actor, scope: str) -> Select[Person]:
    """``SELECT`` of the persons in cases ``actor`` may see under ``scope``, ordered by id."""
    return (
        select(Person)
        .join(Case, Case.id == Person.case_id)
        .where(case_scope_filter(actor, scope))
        .order_by(Person.id)
    )


def capacities_query(actor: Actor, scope: str) -> Select[Capacity]:
    """``SELECT`` of the capacities ``actor`` may see under ``scope``, ordered by id."""
    return (
        select(Capacity)
        .where(capacity_scope_filter(actor, scope))
        .order_by(Capacity.destination_id)
    )
