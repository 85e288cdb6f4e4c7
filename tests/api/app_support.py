"""Fixtures for the API tests: an application on a migrated database (SQLite and PostgreSQL),
one user per role, bearer tokens, and a small world of cases in three states."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fairshare.api.app import create_app
from fairshare.api.permissions import Role
from fairshare.api.security import hash_password, issue_token
from fairshare.api.settings import Settings, explicit_settings
from fairshare.registry.db import session_scope
from fairshare.registry.models import User
from fairshare.registry.services import Actor, commit_batch, set_capacity, transition

# Starlette 1.x prefers the `httpx2` package for its test client and warns (an error under
# filterwarnings=error) when it falls back to `httpx`, which is what the project installs.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
SECRET = "5f1c0e3a9b7d2468ace13579bdf02468" * 2
FINGERPRINT = "a1b2c3d4e5f60718293a4b5c6d7e8f90" * 2

USERS: dict[str, tuple[Role, str | None]] = {
    "reg-el": (Role.registrar, "EL"),
    "reg-it": (Role.registrar, "IT"),
    "cw-de": (Role.caseworker, "DE"),
    "cw-se": (Role.caseworker, "SE"),
    "cap-de": (Role.capacity_manager, "DE"),
    "coord": (Role.coordinator, None),
    "auditor": (Role.auditor, None),
    "analyst": (Role.analyst, None),
    "admin": (Role.admin, None),
}
"""One user per role (the first of each role is that role's 'own state' user)."""

ROLE_USER = {role: name for name, (role, _) in reversed(list(USERS.items()))}


@cache
def password_hash() -> str:
    return hash_password(PASSWORD, "nobody-in-particular")


def family(
    entry_state: str = "EL", ages: tuple[int, ...] = (34, 6), **extra: Any
) -> dict[str, Any]:
    """A registration body."""
    return {
        "entry_state": entry_state,
        "registered_on": "2026-02-01",
        "members": [
            {"id": f"p{j + 1}", "given_name": f"Given{j}", "family_name": "Family", "age": age}
            for j, age in enumerate(ages)
        ],
        "care": {"reception_place": "Reception centre", "medical_needs": "insulin"},
        **extra,
    }


@dataclass
class Api:
    """A running application, its settings and bearer tokens per user."""

    client: TestClient
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, user: str, **extra: str) -> dict[str, str]:
        if user not in self.tokens:
            role, state = USERS[user]
            self.tokens[user] = issue_token(self.settings, user, role, state)[0]
        return {"Authorization": f"Bearer {self.tokens[user]}", **extra}

    def as_role(self, role: Role, **extra: str) -> dict[str, str]:
        return self.headers(ROLE_USER[role], **extra)

    def register(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post("/api/v1/cases", json=body, headers=self.headers(user))
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def engine(self) -> Any:
        return self.client.app.state.fairshare.engine  # type: ignore[attr-defined]


def make_settings(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return explicit_settings(
        env="test",
        data_dir=tmp_path,
        database_url=url,
        secret_key=SECRET,
        fingerprint_key=FINGERPRINT,
        **overrides,
    )


@pytest.fixture
def api(migrated_url: str, tmp_path: Path) -> Iterator[Api]:
    """The application on a fresh migrated database, with one user per role."""
    logging.getLogger("fairshare.api").setLevel(logging.ERROR)
    settings = make_settings(migrated_url, tmp_path)
    app = create_app(settings)
    engine = app.state.fairshare.engine
    with session_scope(engine) as s:
        for name, (role, state) in USERS.items():
            s.add(User(username=name, password_hash=password_hash(), role=role.value, state=state))
    with TestClient(app) as client:
        yield Api(client, settings)
    engine.dispose()


@dataclass
class World:
    """Records in three states: what each scoped user may and may not reach."""

    el_case: str  # registered in EL (reg-el's own)
    it_case: str  # registered in IT (reg-it's own, not reg-el's)
    de_case: str  # registered in EL, allocated to DE (cw-de's own; reg-el's own)
    el_person: str
    it_person: str
    de_person: str


@pytest.fixture
def world(api: Api) -> World:
    el = api.register("reg-el", family("EL"))
    it = api.register("reg-it", family("IT", (40,)))
    de = api.register("reg-el", family("EL", (29,)))
    engine = api.engine()
    reg = Actor("reg-el", "registrar", "EL")
    coord = Actor("coord", "coordinator")
    with session_scope(engine) as s:
        set_capacity(s, coord, "DE", free=3)
        set_capacity(s, coord, "SE", free=0)
    with session_scope(engine) as s:
        transition(s, reg, de["case_id"], "screened")
        transition(s, reg, de["case_id"], "ready")
    with session_scope(engine) as s:
        done = commit_batch(s, coord, 7, [de["case_id"]], today=date.today())
        assert done.allocated == [de["case_id"]]
    return World(
        el_case=el["case_id"],
        it_case=it["case_id"],
        de_case=de["case_id"],
        el_person=next(iter(el["persons"].values())),
        it_person=next(iter(it["persons"].values())),
        de_person=next(iter(de["persons"].values())),
    )
