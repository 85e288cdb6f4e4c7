"""The service's command line, run as a real subprocess on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from fairshare.api.security import verify_password
from fairshare.registry.db import make_engine, session_scope
from fairshare.registry.demo import DEMO_PASSWORD, DEMO_USERS
from fairshare.registry.models import Case, Screening, User

from .server import login, run_cli, service_env, serving

pytestmark = pytest.mark.slow


def _one_line_error(done: object) -> str:
    stderr = getattr(done, "stderr", "")
    assert getattr(done, "returncode", None) == 2, stderr
    # One error line, last; before it at most the log's development-secrets warning.
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("fairshare: error: ")]
    assert errors == lines[-1:], stderr
    assert all(line.startswith("DEVELOPMENT ONLY") for line in lines[:-1]), stderr
    return str(lines[-1])


def test_db_upgrade_and_current(db_url: str, tmp_path: Path) -> None:
    env = service_env(tmp_path, db_url)
    done = run_cli(["db", "current"], env)
    assert done.returncode == 0, done.stderr
    assert "none (empty)" in done.stdout
    assert "run 'fairshare db upgrade'" in done.stdout
    done = run_cli(["db", "upgrade"], env)
    assert done.returncode == 0, done.stderr
    assert "upgraded" in done.stdout
    assert "from empty to" in done.stdout
    assert "@" not in done.stdout or ":***@" in done.stdout or "postgres@" in done.stdout
    again = run_cli(["db", "upgrade"], env)
    assert again.returncode == 0
    assert "already at revision" in again.stdout
    current = run_cli(["db", "current"], env)
    assert "(up to date)" in current.stdout


def test_db_unreachable_is_one_line(tmp_path: Path) -> None:
    env = service_env(tmp_path, "postgresql://nobody@127.0.0.1:1/none")
    message = _one_line_error(run_cli(["db", "upgrade"], env))
    assert "cannot use the database" in message
    assert "FAIRSHARE_DATABASE_URL" in message


def _user(url: str, name: str) -> User | None:
    engine = make_engine(url)
    try:
        with session_scope(engine, readonly=True) as s:
            return s.scalar(select(User).where(User.username == name))
    finally:
        engine.dispose()


def test_users_create(migrated_url: str, tmp_path: Path) -> None:
    env = service_env(tmp_path, migrated_url)
    phrase = "a long enough pass phrase"
    done = run_cli(
        ["users", "create", "maria", "--role", "registrar", "--state", "el"],
        {**env, "FAIRSHARE_PASSWORD": phrase},
    )
    assert done.returncode == 0, done.stderr
    assert "created user 'maria' (registrar for EL)" in done.stdout
    maria = _user(migrated_url, "maria")
    assert maria is not None
    assert (maria.role, maria.state) == ("registrar", "EL")
    assert maria.password_hash.startswith("$argon2id$")
    assert verify_password(maria.password_hash, phrase)

    done = run_cli(["users", "create", "coord", "--role", "coordinator"], env, input=phrase + "\n")
    assert done.returncode == 0, done.stderr
    coord = _user(migrated_url, "coord")
    assert coord is not None
    assert coord.state is None
    assert verify_password(coord.password_hash, phrase)

    weak = _one_line_error(
        run_cli(["users", "create", "weak", "--role", "auditor"], env, input="short\n")
    )
    assert "at least 12" in weak
    assert "maria" in _one_line_error(
        run_cli(
            ["users", "create", "maria2", "--role", "auditor"],
            {**env, "FAIRSHARE_PASSWORD": "maria2 is my password"},
        )
    )
    assert "--state" in _one_line_error(
        run_cli(["users", "create", "x", "--role", "caseworker"], env, input=phrase)
    )
    assert "unknown role" in _one_line_error(
        run_cli(["users", "create", "x", "--role", "boss"], env, input=phrase)
    )
    assert "no password" in _one_line_error(
        run_cli(["users", "create", "x", "--role", "admin"], env, input="")
    )
    assert "already exists" in _one_line_error(
        run_cli(["users", "create", "coord", "--role", "admin"], env, input=phrase)
    )
    for name in ("weak", "maria2", "x"):
        assert _user(migrated_url, name) is None


def test_demo_data_is_seeded_once(migrated_url: str, tmp_path: Path) -> None:
    env = service_env(tmp_path, migrated_url)
    refused = _one_line_error(
        run_cli(["demo-data", "--cases", "60"], {**env, "FAIRSHARE_ENV": "production"})
    )
    assert "only for development" in refused

    first = run_cli(["demo-data", "--cases", "300", "--seed", "5"], env)
    assert first.returncode == 0, first.stderr
    assert "SYNTHETIC cases" in first.stdout
    assert DEMO_PASSWORD in first.stdout
    for name, _, _ in DEMO_USERS:
        assert name in first.stdout
    engine = make_engine(migrated_url)
    try:
        with session_scope(engine, readonly=True) as s:
            statuses = dict(
                s.execute(select(Case.status, func.count()).group_by(Case.status)).all()
            )
            entry = set(s.scalars(select(Case.entry_state).distinct()))
            referrals = s.scalar(
                select(func.count())
                .select_from(Screening)
                .where(Screening.place_of_safety_referral.is_(True))
            )
            tier1 = s.scalar(select(func.count()).select_from(Case).where(Case.tier == 1))
            roles = set(s.scalars(select(User.role)))
        counts = sum(statuses.values())
        assert counts >= 300
        assert entry == {"EL", "IT", "HU"}
        for status in ("registered", "screened", "ready", "allocated", "transfer_scheduled"):
            assert statuses.get(status, 0) > 0, statuses
        assert tier1
        assert referrals is not None  # trafficking victims are rare in 300 cases
        assert roles == {
            "registrar",
            "caseworker",
            "capacity_manager",
            "coordinator",
            "auditor",
            "analyst",
            "admin",
        }

        second = run_cli(["demo-data", "--cases", "300"], env)
        assert second.returncode == 0, second.stderr
        assert "already seeded" in second.stdout
        assert DEMO_PASSWORD in second.stdout
        with session_scope(engine, readonly=True) as s:
            assert s.scalar(select(func.count()).select_from(Case)) == counts
    finally:
        engine.dispose()


def test_demo_data_refuses_a_registry_with_other_data(migrated_url: str, tmp_path: Path) -> None:
    env = service_env(tmp_path, migrated_url)
    done = run_cli(
        ["users", "create", "someone", "--role", "auditor"],
        {**env, "FAIRSHARE_PASSWORD": "a long enough pass phrase"},
    )
    assert done.returncode == 0, done.stderr
    assert "empty registry" in _one_line_error(run_cli(["demo-data", "--cases", "60"], env))


def test_serve_creates_the_schema_and_answers(db_url: str, tmp_path: Path) -> None:
    env = service_env(tmp_path, db_url)
    log = tmp_path / "serve.log"
    with serving(env, log) as server, httpx.Client(base_url=server.base, timeout=30) as client:
        assert client.get("/api/v1/health").json() == {"status": "ok"}
        assert client.get("/api/v1/openapi.json").status_code == 200
        assert client.get("/api/docs").status_code == 200
        assert client.get("/api/v1/capacities").status_code == 401
    output = log.read_text("utf-8")
    assert "creating the schema" in output
    assert f"serving {server.base}/" in output
    # A restart finds the schema and creates a user the running service accepts.
    phrase = "a long enough pass phrase"
    done = run_cli(
        ["users", "create", "coord", "--role", "coordinator"],
        {**env, "FAIRSHARE_PASSWORD": phrase},
    )
    assert done.returncode == 0, done.stderr
    with serving(env, log) as server, httpx.Client(base_url=server.base, timeout=30) as client:
        headers = login(client, "coord", phrase)
        me = client.get("/api/v1/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["role"] == "coordinator"
    assert log.read_text("utf-8").count("creating the schema") == 1


def test_serve_refuses_production_without_secrets(tmp_path: Path) -> None:
    env = service_env(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", FAIRSHARE_ENV="production")
    message = _one_line_error(run_cli(["serve", "--port", "1"], env, timeout=60))
    assert "FAIRSHARE_SECRET_KEY is not set" in message
    assert not (tmp_path / "x.db").exists()
