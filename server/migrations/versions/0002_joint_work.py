"""Joint actions, their audit chain, pending matters.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")


#: Covering index of the managers' reports (see server/storage/schema.py).
_REPORT_COLUMNS = ["created_at", "queue", "site_id", "site_name", "specialist_id",
                   "specialist_name", "state", "answered_at", "wait_s", "talk_s", "rating"]


def upgrade() -> None:
    op.create_index("ix_sessions_report", "sessions", _REPORT_COLUMNS)
    _create_actions()
    op.create_table(
        "audit_log",
        sa.Column("seq", _BIGINT, primary_key=True, autoincrement=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("action_id", sa.String, nullable=False),
        sa.Column("event", sa.String, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_action_id", "audit_log", ["action_id"])
    _create_matters()


def _create_actions() -> None:
    op.create_table(
        "joint_actions",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("type", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("enterprise_name", sa.String, nullable=False),
        sa.Column("enterprise_uscc", sa.String, nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("session_id", sa.String),
        sa.Column("call_id", sa.String),
        sa.Column("created_by", sa.String, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("closed_at", _TS),
        sa.Column("rejected_by", sa.String),
        sa.Column("rejected_reason", sa.Text),
    )
    op.create_index("ix_joint_actions_created", "joint_actions", ["created_at"])
    op.create_index("ix_joint_actions_type", "joint_actions", ["type", "created_at"])
    op.create_index("ix_joint_actions_state", "joint_actions", ["state", "created_at"])
    op.create_index("ix_joint_actions_closed", "joint_actions", ["closed_at"])
    op.create_index("ix_joint_actions_session", "joint_actions", ["session_id"])
    op.create_table(
        "joint_action_steps",
        sa.Column(
            "action_id",
            sa.String,
            sa.ForeignKey("joint_actions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step_id", sa.String, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("department", sa.String, nullable=False),
        sa.Column("signed_by", sa.String),
        sa.Column("signed_at", _TS),
    )
    op.create_index(
        "ix_joint_action_steps_department", "joint_action_steps", ["department"]
    )
    op.create_index("ix_joint_action_steps_signed_by", "joint_action_steps", ["signed_by"])


def _create_matters() -> None:
    op.create_table(
        "pending_matters",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String),
        sa.Column("enterprise_name", sa.String, nullable=False),
        sa.Column("enterprise_uscc", sa.String),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("matter_class", sa.String, nullable=False),
        sa.Column("department", sa.String, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("opened_by", sa.String, nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("resolved_by", sa.String),
        sa.Column("resolved_at", _TS),
        sa.Column("resolution", sa.Text),
        sa.Column("resolved_on_time", sa.Boolean),
    )
    op.create_index(
        "ix_pending_matters_department", "pending_matters", ["department", "state"]
    )
    op.create_index("ix_pending_matters_opened", "pending_matters", ["opened_at"])
    op.create_index("ix_pending_matters_resolved", "pending_matters", ["resolved_at"])
    op.create_index("ix_pending_matters_due", "pending_matters", ["due"])
    op.create_index("ix_pending_matters_session", "pending_matters", ["session_id"])
    op.create_table(
        "matter_history",
        sa.Column("id", _BIGINT, primary_key=True),
        sa.Column(
            "matter_id",
            sa.String,
            sa.ForeignKey("pending_matters.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("old_state", sa.String),
        sa.Column("new_state", sa.String, nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_matter_history_matter", "matter_history", ["matter_id", "id"])


def downgrade() -> None:
    for table in (
        "matter_history",
        "pending_matters",
        "audit_log",
        "joint_action_steps",
        "joint_actions",
    ):
        op.drop_table(table)
    op.drop_index("ix_sessions_report", "sessions")
