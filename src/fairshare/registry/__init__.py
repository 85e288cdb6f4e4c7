"""The case registry: the only package that knows SQL (SQLAlchemy 2, Alembic).

* :mod:`fairshare.registry.db`: engines (SQLite WAL + ``BEGIN IMMEDIATE``, PostgreSQL via
  psycopg 3), :func:`~fairshare.registry.db.session_scope`, migrations;
* :mod:`fairshare.registry.models`: the tables;
* :mod:`fairshare.registry.services`: every service function (registration, screening,
  workflow, transfers, capacities, batches, erasure, exports, audit);
* :mod:`fairshare.registry.errors`: the registry's errors.

See docs/registry.md.
"""
