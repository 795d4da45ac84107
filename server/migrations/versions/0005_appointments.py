"""Appointments: bookings of a queue's slots, one seat each (server/storage/appointments.py).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_OPEN = sa.text("state IN ('booked', 'arrived')")


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("code", sa.String, nullable=False),
        sa.Column("queue", sa.String, nullable=False),
        sa.Column("start_at", _TS, nullable=False),
        sa.Column("end_at", _TS, nullable=False),
        sa.Column("seat", sa.Integer),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("enterprise_name", sa.String, nullable=False),
        sa.Column("enterprise_uscc", sa.String, nullable=False),
        sa.Column("phone", sa.String),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("changed_at", _TS, nullable=False),
        sa.Column("session_id", sa.String),
        sa.Column("arrived_at", _TS),
        sa.Column("served_at", _TS),
    )
    op.create_index("uq_appointments_seat", "appointments", ["queue", "start_at", "seat"],
                    unique=True)
    op.create_index("uq_appointments_open_code", "appointments", ["code"], unique=True,
                    sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.create_index("ix_appointments_start", "appointments", ["start_at"])
    op.create_index("ix_appointments_state", "appointments", ["state", "start_at"])
    op.create_index("ix_appointments_session", "appointments", ["session_id"])


def downgrade() -> None:
    op.drop_table("appointments")
