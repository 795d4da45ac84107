"""Hand-off tickets: when the phone that opened one got its `welcome`, and the look-up of a
phone's call by its visitor id (a dead node's phone, `handoff.phone_of`).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handoff_tickets") as batch:
        batch.add_column(sa.Column("welcomed_at", sa.DateTime(timezone=True)))
    op.create_index("ix_handoff_tickets_visitor_id", "handoff_tickets", ["visitor_id"])


def downgrade() -> None:
    op.drop_index("ix_handoff_tickets_visitor_id", "handoff_tickets")
    with op.batch_alter_table("handoff_tickets") as batch:
        batch.drop_column("welcomed_at")
