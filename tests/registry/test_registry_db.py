"""Engines, migrations and the append-only audit table, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from fairshare.errors import InputError
from fairshare.registry import db
from fairshare.registry.models import Base
from fairshare.registry.services import record_event

from .helpers import ADMIN


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert db.current_revision(db_url) is None
    db.upgrade(db_url)
    assert db.current_revision(db_url) == db.head_revision()
    assert {"cases", "persons", "audit_events", "capacities", "ledger"} <= _tables(db_url)
    db.downgrade(db_url)
    assert db.current_revision(db_url) is None
    assert _tables(db_url) <= {"alembic_version"}
    db.upgrade(db_url)
    assert db.current_revision(db_url) == db.head_revision()


def test_models_match_the_migration(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
        conn.rollback()
    assert diff == []


def _audit_row(engine: Engine) -> int:
    with db.session_scope(engine) as s:
        event = record_event(s, ADMIN, "test.event", "test", "x", detail={"n": 1})
        s.flush()
        return event.id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
    ],
)
def test_audit_table_is_append_only(engine: Engine, statement: str) -> None:
    event_id = _audit_row(engine)
    with pytest.raises(DBAPIError, match="append-only"), db.session_scope(engine) as s:
        s.execute(text(statement), {"id": event_id})
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), db.session_scope(engine) as s:
            s.execute(text("TRUNCATE audit_events"))
    with db.session_scope(engine, readonly=True) as s:
        assert s.execute(text("SELECT actor FROM audit_events")).scalars().all() == ["admin"]


def test_sqlite_settings(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
            conn.rollback()
    finally:
        engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": db.BUSY_TIMEOUT_MS,
    }


def test_urls() -> None:
    assert db.normalise_url("postgresql://a@b/c") == "postgresql+psycopg://a@b/c"
    with pytest.raises(InputError, match="in-memory"):
        db.make_engine("sqlite://")
    with pytest.raises(InputError, match="unsupported database"):
        db.make_engine("mysql://x@y/z")


def test_session_scope_rolls_back(engine: Engine) -> None:
    def failing() -> None:
        with db.session_scope(engine) as s:
            record_event(s, ADMIN, "test.event", "test")
            s.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing()
    with db.session_scope(engine, readonly=True) as s:
        assert s.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0


def test_sqlite_writers_queue_and_readers_do_not_wait(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as writer:
            record_event(writer, ADMIN, "test.first", "test")
            writer.flush()  # holds the write lock (BEGIN IMMEDIATE) until the block ends
            with db.session_scope(engine, readonly=True) as reader:
                count = reader.execute(text("SELECT count(*) FROM audit_events")).scalar()
            assert count == 0  # the reader did not wait, and saw only committed data
            raw = engine.raw_connection()
            try:
                raw.execute("PRAGMA busy_timeout = 0")  # type: ignore[attr-defined]
                with pytest.raises(Exception, match="locked"):
                    raw.execute("BEGIN IMMEDIATE")  # type: ignore[attr-defined]
            finally:
                raw.close()
    finally:
        engine.dispose()
