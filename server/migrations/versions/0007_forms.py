"""Forms generated from a joint action's template, presented in a session and signed there.

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "forms",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("action_id", sa.String, nullable=False),
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("call_id", sa.String, nullable=False),
        sa.Column("terminal_id", sa.String, nullable=False),
        sa.Column("template", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("view_key", sa.String, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("unsigned_sha256", sa.String, nullable=False),
        sa.Column("presented_by", sa.String, nullable=False),
        sa.Column("presented_at", _TS, nullable=False),
        sa.Column("sha256", sa.String),
        sa.Column("path", sa.String),
        sa.Column("closed_by", sa.String),
        sa.Column("closed_at", _TS),
    )
    op.create_index("ix_forms_action", "forms", ["action_id"])
    op.create_index("ix_forms_session", "forms", ["session_id"])


def downgrade() -> None:
    op.drop_table("forms")
