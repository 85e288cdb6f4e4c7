"""Shared test data for the registry tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine, func, select

from fairshare.registry.db import session_scope
from fairshare.registry.models import Base
from fairshare.registry.services import Actor, set_capacity, transition

ADMIN = Actor("admin", "admin")
REG_EL = Actor("reg-el", "registrar", "EL")
REG_IT = Actor("reg-it", "registrar", "IT")
COORD = Actor("coord", "coordinator")
CW_DE = Actor("cw-de", "caseworker", "DE")
CAP_DE = Actor("cap-de", "capacity_manager", "DE")
TODAY = date(2026, 3, 2)


def family(
    entry_state: str = "EL",
    ages: Sequence[int] = (34, 6),
    *,
    passport: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A registration body: a family of ``len(ages)`` persons."""
    members: list[dict[str, Any]] = []
    for j, age in enumerate(ages):
        member: dict[str, Any] = {
            "id": f"p{j + 1}",
            "given_name": f"Given{j}",
            "family_name": "Family",
            "age": age,
        }
        if passport is not None and j == 0:
            member["documents"] = [{"kind": "passport", "issuing_state": "SYR", "number": passport}]
        members.append(member)
    return {
        "entry_state": entry_state,
        "registered_on": "2026-02-01",
        "members": members,
        "care": {"reception_place": "RIC Lesvos", "child_protection_referral": False},
        **extra,
    }


def make_ready(engine: Engine, case_id: str, registrar: Actor = REG_EL) -> None:
    """registered -> screened -> ready."""
    with session_scope(engine) as s:
        transition(s, registrar, case_id, "screened")
        transition(s, registrar, case_id, "ready")


def capacities(
    engine: Engine, free: dict[str, int], services: dict[str, dict[str, int]] | None = None
) -> None:
    with session_scope(engine) as s:
        for dest, n in free.items():
            set_capacity(s, ADMIN, dest, free=n, services=(services or {}).get(dest))


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table (to show that something stored nothing)."""
    with session_scope(engine, readonly=True) as s:
        return {
            t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }
