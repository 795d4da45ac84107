"""Hand-off tickets: a phone takes a terminal's waiting call over (`call.handoff`).

Revision ID: 0008
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "handoff_tickets",
        sa.Column("ticket_hash", sa.String, primary_key=True),
        sa.Column("call_id", sa.String, nullable=False),
        sa.Column("terminal_id", sa.String, nullable=False),
        sa.Column("visitor_id", sa.String, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS),
    )
    op.create_index("ix_handoff_tickets_expires_at", "handoff_tickets", ["expires_at"])


def downgrade() -> None:
    op.drop_table("handoff_tickets")
