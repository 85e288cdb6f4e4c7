"""Shared test configuration."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


# ------------------------------------------------------------------------------------------
# Databases for the registry tests: every test that touches the database runs on SQLite and
# on a real PostgreSQL server. PostgreSQL comes from FAIRSHARE_TEST_POSTGRES_URL, else from
# a throw-away cluster started here (Debian's binaries, run as the `postgres` user when we
# are root). Without either, those tests are skipped with a loud reason, unless
# FAIRSHARE_REQUIRE_SERVICES=1 (CI), where that is a failure.


_PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def _require_services() -> bool:
    return os.environ.get("FAIRSHARE_REQUIRE_SERVICES") == "1"


def _pg_bin() -> Path | None:
    """PostgreSQL's server binaries: FAIRSHARE_TEST_POSTGRES_BIN, else Debian's newest."""
    pattern = os.environ.get("FAIRSHARE_TEST_POSTGRES_BIN", _PG_BIN_GLOB)
    found = sorted(Path("/").glob(pattern.lstrip("/")), key=lambda p: p.parent.name)
    for path in reversed(found):
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Cluster:
    """A throw-away PostgreSQL cluster in a temporary directory."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="fairshare-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        self.user = "postgres"
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        else:
            import getpass

            self.user = getpass.getuser()

    def _run(self, *args: str) -> None:
        command = [*(["runuser", "-u", "postgres", "--"] if self.as_postgres else []), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")

    def start(self) -> str:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            self.user,
            "--no-sync",
            "-E",
            "UTF8",
        )
        options = (
            f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-w",
            "-l",
            str(self.dir / "log"),
            "start",
        )
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """The admin URL of a PostgreSQL server for tests, or ``None`` (with the reason logged)."""
    url = os.environ.get("FAIRSHARE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    bin_dir = _pg_bin()
    if bin_dir is None:
        yield None
        return
    cluster = _Cluster(bin_dir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _no_postgres(reason: str) -> None:
    message = (
        f"POSTGRESQL TESTS NOT RUN: {reason}. Set FAIRSHARE_TEST_POSTGRES_URL or install "
        "PostgreSQL's server binaries (Debian: postgresql)"
    )
    if _require_services():
        pytest.fail(message + " (FAIRSHARE_REQUIRE_SERVICES=1: this is a failure)")
    pytest.skip(message)


class _Templates:
    """Migrated template databases, made once per session: each test copies one."""

    def __init__(self) -> None:
        self.sqlite: Path | None = None
        self.postgres: str | None = None


@pytest.fixture(scope="session")
def _db_templates(postgres_server: str | None) -> Iterator[_Templates]:
    templates = _Templates()
    yield templates
    if templates.postgres is not None and postgres_server is not None:
        _admin_execute(
            postgres_server, f'DROP DATABASE IF EXISTS "{templates.postgres}" WITH (FORCE)'
        )


def _admin_execute(admin_url: str, *statements: str) -> None:
    from fairshare.registry.db import make_engine

    engine = make_engine(admin_url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    from fairshare.registry.db import normalise_url

    return make_url(normalise_url(url)).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: str | None
) -> Iterator[str]:
    """A fresh, empty database (not migrated) on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    if postgres_server is None:
        _no_postgres(
            "no FAIRSHARE_TEST_POSTGRES_URL and no PostgreSQL binaries in "
            + os.environ.get("FAIRSHARE_TEST_POSTGRES_BIN", _PG_BIN_GLOB)
        )
    assert postgres_server is not None
    name = f"t_{uuid.uuid4().hex[:16]}"
    _admin_execute(postgres_server, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(postgres_server, name)
    finally:
        _admin_execute(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: str | None,
    _db_templates: _Templates,
) -> Iterator[str]:
    """A fresh database migrated to the newest revision, copied from a per-session template."""
    from fairshare.registry.db import upgrade

    if request.param == "sqlite":
        if _db_templates.sqlite is None:
            template = tmp_path_factory.mktemp("registry-template") / "template.db"
            upgrade(f"sqlite:///{template}")
            _db_templates.sqlite = template
        target = tmp_path / "registry.db"
        shutil.copyfile(_db_templates.sqlite, target)
        yield f"sqlite:///{target}"
        return
    if postgres_server is None:
        _no_postgres(
            "no FAIRSHARE_TEST_POSTGRES_URL and no PostgreSQL binaries in "
            + os.environ.get("FAIRSHARE_TEST_POSTGRES_BIN", _PG_BIN_GLOB)
        )
    assert postgres_server is not None
    if _db_templates.postgres is None:
        template = f"fairshare_template_{uuid.uuid4().hex[:8]}"
        _admin_execute(postgres_server, f'CREATE DATABASE "{template}"')
        upgrade(_with_database(postgres_server, template))
        _db_templates.postgres = template
    name = f"t_{uuid.uuid4().hex[:16]}"
    _admin_execute(postgres_server, f'CREATE DATABASE "{name}" TEMPLATE "{_db_templates.postgres}"')
    try:
        yield _with_database(postgres_server, name)
    finally:
        _admin_execute(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(migrated_url: str) -> Iterator[object]:
    """An engine on a fresh migrated database (disposed at the end)."""
    from fairshare.registry.db import make_engine

    eng = make_engine(migrated_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def fingerprint_key() -> bytes:
    """A fingerprint key for tests only (a real one comes from configuration)."""
    return b"test-only-fingerprint-key-32byte"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Debian chromium for every browser test of the session (Playwright)."""
    from browser_support import launch, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch(p)
        try:
            yield chromium
        finally:
            chromium.close()
