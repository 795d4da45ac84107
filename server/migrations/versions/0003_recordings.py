"""Recordings and their manifests, recorder credentials, the recording access log.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recorders",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("token_hash", sa.String, nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS),
    )
    op.create_table(
        "recordings",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("participant_id", sa.String, nullable=False),
        sa.Column("segment", sa.Integer, nullable=False),
        sa.Column("recorder", sa.String, nullable=False),
        sa.Column("path", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("started_at", _TS),
        sa.Column("ended_at", _TS),
        sa.Column("duration_s", sa.Float),
        sa.Column("codecs", sa.JSON, nullable=False),
        sa.Column("offsets", sa.JSON, nullable=False),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("sha256", sa.String),
        sa.Column("error", sa.Text),
        sa.Column("stats", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS),
        sa.UniqueConstraint(
            "session_id", "participant_id", "segment", name="uq_recordings_segment"
        ),
    )
    op.create_index("ix_recordings_session", "recordings", ["session_id", "participant_id"])
    op.create_index("ix_recordings_created", "recordings", ["created_at"])
    op.create_table(
        "recording_access",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("recording_id", sa.String, sa.ForeignKey("recordings.id"), nullable=False),
        sa.Column("username", sa.String, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("remote", sa.String),
        sa.Column("byte_range", sa.String),
    )
    op.create_index(
        "ix_recording_access_recording", "recording_access", ["recording_id", "at"]
    )


def downgrade() -> None:
    for table in ("recording_access", "recordings", "recorders"):
        op.drop_table(table)
