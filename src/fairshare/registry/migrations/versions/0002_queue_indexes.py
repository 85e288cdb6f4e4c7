"""Indexes for the dashboard's queue: by priority, and by registration date.

With 100,000 cases the queue's orders (tier, then the date of registration; or the date
alone) were sorted in full for every page; these indexes serve them directly
(benchmarks/bench_dashboard.py, docs/benchmarks.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cases_queue_priority", "cases", ["tier", "registered_on", "id"])
    op.create_index("ix_cases_registered_on_id", "cases", ["registered_on", "id"])


def downgrade() -> None:
    op.drop_index("ix_cases_registered_on_id", table_name="cases")
    op.drop_index("ix_cases_queue_priority", table_name="cases")
