"""Initial schema: accounts, sites and terminals, the session log and its projection.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("username", sa.String, nullable=False, unique=True),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("password_hash", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("department", sa.String),
        sa.Column("skills", sa.JSON, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.String, primary_key=True),
        sa.Column(
            "user_id", sa.String, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )
    op.create_index("ix_auth_tokens_user_id", "auth_tokens", ["user_id"])
    op.create_index("ix_auth_tokens_expires_at", "auth_tokens", ["expires_at"])
    op.create_table(
        "sites",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "terminals",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("site_id", sa.String, sa.ForeignKey("sites.id"), nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("token_hash", sa.String, nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
        sa.Column("last_seen_at", _TS),
    )
    op.create_index("ix_terminals_site_id", "terminals", ["site_id"])
    _create_sessions()
    _create_log()


def _create_sessions() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("call_id", sa.String, nullable=False, unique=True),
        sa.Column("queue", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("site_id", sa.String),
        sa.Column("site_name", sa.String),
        sa.Column("terminal_id", sa.String),
        sa.Column("terminal_name", sa.String),
        sa.Column("enterprise_name", sa.String),
        sa.Column("enterprise_uscc", sa.String),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("answered_at", _TS),
        sa.Column("ended_at", _TS),
        sa.Column("wait_s", sa.Float),
        sa.Column("talk_s", sa.Float),
        sa.Column("end_reason", sa.String),
        sa.Column("specialist_id", sa.String),
        sa.Column("specialist_name", sa.String),
        sa.Column("node_id", sa.String),
        sa.Column("outcome", sa.String),
        sa.Column("notes", sa.Text),
        sa.Column("rating", sa.Integer),
        sa.Column("rating_comment", sa.Text),
    )
    op.create_index("ix_sessions_created", "sessions", ["created_at", "id"])
    for name, column in (
        ("queue", "queue"),
        ("site", "site_id"),
        ("terminal", "terminal_id"),
        ("specialist", "specialist_id"),
        ("outcome", "outcome"),
        ("rating", "rating"),
    ):
        op.create_index(f"ix_sessions_{name}", "sessions", [column, "created_at"])
    op.create_index("ix_sessions_state", "sessions", ["state"])
    op.create_table(
        "session_participants",
        sa.Column(
            "session_id",
            sa.String,
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("participant_id", sa.String, primary_key=True),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("principal_id", sa.String),
        sa.Column("name", sa.String),
        sa.Column("joined_at", _TS, nullable=False),
        sa.Column("left_at", _TS),
        sa.Column("left_reason", sa.String),
    )
    op.create_index(
        "ix_session_participants_principal_id", "session_participants", ["principal_id"]
    )


def _create_log() -> None:
    op.create_table(
        "session_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("session_id", sa.String, sa.ForeignKey("sessions.id")),
        sa.Column("call_id", sa.String),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("type", sa.String, nullable=False),
        sa.Column("actor", sa.String),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_session_events_ts", "session_events", ["ts"])
    op.create_index("ix_session_events_session", "session_events", ["session_id", "id"])


def downgrade() -> None:
    for table in (
        "session_events",
        "session_participants",
        "sessions",
        "terminals",
        "sites",
        "auth_tokens",
        "users",
    ):
        op.drop_table(table)
