"""Engines, transactions and migrations: SQLite by default, PostgreSQL in production.

SQLite (a file, ``sqlite:///path/registry.db``) is set up for durability and for several
writers at once:

* ``journal_mode=WAL`` (readers never block the writer), ``synchronous=FULL`` (a committed
  transaction survives a power cut), ``foreign_keys=ON``, ``busy_timeout`` (a writer waits
  for the lock instead of failing);
* every write transaction starts with ``BEGIN IMMEDIATE``: it takes SQLite's write lock at
  the start, so concurrent writers queue up instead of failing half-way with "database is
  locked" when they upgrade a read lock. This is SQLAlchemy's documented pysqlite recipe
  (the driver's own transaction handling is switched off and the ``begin`` event emits the
  ``BEGIN``). Read-only sessions (``session_scope(engine, readonly=True)``) use a plain
  ``BEGIN``.

PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``; a plain
``postgresql://`` or ``postgres://`` URL is mapped to it).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from fairshare.errors import InputError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "POOL_SIZE",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "is_postgresql",
    "is_sqlite",
    "make_engine",
    "normalise_url",
    "session_scope",
    "upgrade",
]

BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite writer waits for the write lock before giving up (milliseconds)."""

POOL_SIZE = 20
"""Connections an engine keeps open (and as many more it may open when busy).

Large enough for the server's worker threads: with SQLAlchemy's default (5, plus 10 opened
and closed again) a busy server opens and closes connections all the time."""

MIGRATIONS = Path(__file__).parent / "migrations"
_READONLY = "fairshare_readonly"


def normalise_url(url: str) -> str:
    """The URL with PostgreSQL mapped to the psycopg 3 driver.

    >>> normalise_url("postgresql://u@localhost/db")
    'postgresql+psycopg://u@localhost/db'
    >>> normalise_url("postgres://u@h/db")
    'postgresql+psycopg://u@h/db'
    >>> normalise_url("sqlite:///x.db")
    'sqlite:///x.db'
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError(
            "the database URL is empty; use e.g. sqlite:///registry.db or "
            "postgresql://user@host/dbname"
        )
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Switch off pysqlite's own BEGIN handling; the "begin" event emits it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    readonly = conn.get_execution_options().get(_READONLY, False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` (SQLite file or PostgreSQL), configured as described above.

    Dispose of it (``engine.dispose()``) when done: open connections are a resource leak.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise InputError(
                "an in-memory SQLite database cannot be shared between connections; give a "
                "file, e.g. sqlite:///registry.db"
            )
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            pool_size=POOL_SIZE,
            max_overflow=POOL_SIZE,
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_engine(
            url,
            echo=echo,
            pool_pre_ping=True,
            pool_size=POOL_SIZE,
            max_overflow=POOL_SIZE,
        )
    raise InputError(
        f"unsupported database '{backend}'; use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def is_sqlite(engine: Engine | Connection) -> bool:
    """Whether the engine or connection talks to SQLite."""
    return engine.dialect.name == "sqlite"


def is_postgresql(engine: Engine | Connection) -> bool:
    """Whether the engine or connection talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine, *, readonly: bool = False) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises.

    Objects stay usable after the block (``expire_on_commit=False``). On SQLite a write
    session takes the write lock at its start (``BEGIN IMMEDIATE``); ``readonly=True``
    starts a plain ``BEGIN`` instead, which never waits for writers under WAL. The write
    sessions of one process on one SQLite engine queue in the process first
    (:func:`_writer_queue`).
    """
    bind = engine.execution_options(**{_READONLY: True}) if readonly else engine
    queue = _writer_queue(engine) if not readonly and is_sqlite(engine) else nullcontext()
    with queue:
        session = Session(bind=bind, expire_on_commit=False)
        try:
            with session.begin():
                yield session
        finally:
            session.close()


_WRITER_QUEUES: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_WRITER_QUEUES_GUARD = threading.Lock()


def _writer_queue(engine: Engine) -> threading.RLock:
    """The lock the SQLite write sessions of this process queue on before ``BEGIN IMMEDIATE``.

    SQLite's own wait for the write lock (``busy_timeout``) polls with sleeps of up to
    100 ms, so under load a waiting writer often sleeps long after the lock came free: a
    long tail of latencies. Queueing the threads of one process on a lock hands the file
    lock on at once; processes (``--workers``) still meet at SQLite's lock.
    """
    with _WRITER_QUEUES_GUARD:
        lock = _WRITER_QUEUES.get(engine)
        if lock is None:
            lock = _WRITER_QUEUES[engine] = threading.RLock()
        return lock


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` using the migrations shipped in the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["fairshare_url"] = normalise_url(url)
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at ``url`` down to ``revision`` (default: empty)."""
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration shipped with this version of fairshare."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite:///unused.db")).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise InputError("no migrations found in the package")
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, or ``None`` if it was never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            revision = MigrationContext.configure(conn).get_current_revision()
            conn.rollback()
            return revision
    finally:
        engine.dispose()
