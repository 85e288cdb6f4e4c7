"""Alembic environment of the registry (run through :mod:`fairshare.registry.db`).

The URL comes from ``config.attributes["fairshare_url"]``, set by
:func:`fairshare.registry.db.alembic_config`; no ``alembic.ini`` is needed. Importing this
file outside Alembic (e.g. by a doctest collector) does nothing.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from fairshare.registry.db import make_engine
from fairshare.registry.models import Base


def _in_alembic() -> bool:
    try:
        context.config  # noqa: B018 - only set during an Alembic run
    except (AttributeError, NameError):
        return False
    return True


def run_migrations_online() -> None:
    """Run the migrations in one transaction (transactional DDL on both databases)."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(str(config.attributes["fairshare_url"]))
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if _in_alembic():
    if context.is_offline_mode():
        raise SystemExit("offline (SQL script) migrations are not supported; run them online")
    run_migrations_online()
