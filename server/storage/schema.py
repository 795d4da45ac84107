"""Table definitions, shared by the queries and checked against the migrations.

Timestamps go through `UTCDateTime`: aware UTC in Python, `timestamptz` on
PostgreSQL and fixed-width ISO text on SQLite, so that ordering and range
comparisons work in SQL on both.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend; naive values are refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.utcoffset() is None:
            raise ValueError(f"timestamps must be timezone-aware datetimes, got {value!r}")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("username", sa.String, nullable=False, unique=True),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("password_hash", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("department", sa.String),
    sa.Column("skills", sa.JSON, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("unit_id", sa.String, index=True),  # a manager's unit (migration 0004)
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
)

auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    sa.Column("token_hash", sa.String, primary_key=True),
    sa.Column(
        "user_id",
        sa.String,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
)

sites = sa.Table(
    "sites",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("unit_id", sa.String, index=True),  # the unit the site belongs to (0004)
)

terminals = sa.Table(
    "terminals",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("site_id", sa.String, sa.ForeignKey("sites.id"), nullable=False, index=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("token_hash", sa.String, nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("last_seen_at", UTCDateTime),
)

sessions = sa.Table(
    "sessions",
    metadata,
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
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("answered_at", UTCDateTime),
    sa.Column("ended_at", UTCDateTime),
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
    # Keyset pagination walks (created_at, id); each list filter leads an index.
    sa.Index("ix_sessions_created", "created_at", "id"),
    sa.Index("ix_sessions_queue", "queue", "created_at"),
    sa.Index("ix_sessions_site", "site_id", "created_at"),
    sa.Index("ix_sessions_terminal", "terminal_id", "created_at"),
    sa.Index("ix_sessions_specialist", "specialist_id", "created_at"),
    sa.Index("ix_sessions_outcome", "outcome", "created_at"),
    sa.Index("ix_sessions_rating", "rating", "created_at"),
    sa.Index("ix_sessions_state", "state"),
)

session_participants = sa.Table(
    "session_participants",
    metadata,
    sa.Column(
        "session_id",
        sa.String,
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("participant_id", sa.String, primary_key=True),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("principal_id", sa.String, index=True),
    sa.Column("name", sa.String),
    sa.Column("joined_at", UTCDateTime, nullable=False),
    sa.Column("left_at", UTCDateTime),
    sa.Column("left_reason", sa.String),
)

session_events = sa.Table(
    "session_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("session_id", sa.String, sa.ForeignKey("sessions.id")),
    sa.Column("call_id", sa.String),
    sa.Column("ts", UTCDateTime, nullable=False, index=True),
    sa.Column("type", sa.String, nullable=False),
    sa.Column("actor", sa.String),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_session_events_session", "session_id", "id"),
)

# ---- joint actions, their audit chain, pending matters (migration 0002) ----------

#: The managers' reports scan a period of sessions: with every column they read in
#: one index, that scan never touches the table (SQLite: 4x faster over a year).
REPORT_COLUMNS = ("created_at", "queue", "site_id", "site_name", "specialist_id",
                  "specialist_name", "state", "answered_at", "wait_s", "talk_s", "rating")
sa.Index("ix_sessions_report", *(sessions.c[name] for name in REPORT_COLUMNS))

joint_actions = sa.Table(
    "joint_actions",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("type", sa.String, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("enterprise_name", sa.String, nullable=False),
    sa.Column("enterprise_uscc", sa.String, nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("session_id", sa.String),
    sa.Column("call_id", sa.String),
    sa.Column("created_by", sa.String, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("rejected_by", sa.String),
    sa.Column("rejected_reason", sa.Text),
    sa.Index("ix_joint_actions_created", "created_at"),
    sa.Index("ix_joint_actions_type", "type", "created_at"),
    sa.Index("ix_joint_actions_state", "state", "created_at"),
    sa.Index("ix_joint_actions_closed", "closed_at"),
    sa.Index("ix_joint_actions_session", "session_id"),
)

joint_action_steps = sa.Table(
    "joint_action_steps",
    metadata,
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
    sa.Column("signed_at", UTCDateTime),
    sa.Index("ix_joint_action_steps_department", "department"),
    sa.Index("ix_joint_action_steps_signed_by", "signed_by"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=False),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("action_id", sa.String, nullable=False, index=True),
    sa.Column("event", sa.String, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

pending_matters = sa.Table(
    "pending_matters",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("session_id", sa.String),
    sa.Column("enterprise_name", sa.String, nullable=False),
    sa.Column("enterprise_uscc", sa.String),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("matter_class", sa.String, nullable=False),
    sa.Column("department", sa.String, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("opened_by", sa.String, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("due", sa.Date, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("resolved_by", sa.String),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolution", sa.Text),
    sa.Column("resolved_on_time", sa.Boolean),
    sa.Index("ix_pending_matters_department", "department", "state"),
    sa.Index("ix_pending_matters_opened", "opened_at"),
    sa.Index("ix_pending_matters_resolved", "resolved_at"),
    sa.Index("ix_pending_matters_due", "due"),
    sa.Index("ix_pending_matters_session", "session_id"),
)

matter_history = sa.Table(
    "matter_history",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column(
        "matter_id",
        sa.String,
        sa.ForeignKey("pending_matters.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("old_state", sa.String),
    sa.Column("new_state", sa.String, nullable=False),
    sa.Column("note", sa.Text),
    sa.Index("ix_matter_history_matter", "matter_id", "id"),
)

# ---- recordings, recorder credentials, the access log (migration 0003) -----------

recorders = sa.Table(
    "recorders",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("token_hash", sa.String, nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("session_id", sa.String, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("participant_id", sa.String, nullable=False),
    sa.Column("segment", sa.Integer, nullable=False),
    sa.Column("recorder", sa.String, nullable=False),
    sa.Column("path", sa.String, nullable=False),  # relative to [recording] dir
    sa.Column("state", sa.String, nullable=False),
    sa.Column("started_at", UTCDateTime),  # recorder clock of the file's time 0
    sa.Column("ended_at", UTCDateTime),
    sa.Column("duration_s", sa.Float),
    sa.Column("codecs", sa.JSON, nullable=False),
    sa.Column("offsets", sa.JSON, nullable=False),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("sha256", sa.String),
    sa.Column("error", sa.Text),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime),
    sa.UniqueConstraint("session_id", "participant_id", "segment", name="uq_recordings_segment"),
    sa.Index("ix_recordings_session", "session_id", "participant_id"),
    sa.Index("ix_recordings_created", "created_at"),
)

recording_access = sa.Table(
    "recording_access",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("recording_id", sa.String, sa.ForeignKey("recordings.id"), nullable=False),
    sa.Column("username", sa.String, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("remote", sa.String),
    sa.Column("byte_range", sa.String),
    sa.Index("ix_recording_access_recording", "recording_id", "at"),
)

# ---- the city's units and the account audit trail (migration 0004) ----------------

units = sa.Table(
    "units",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("level", sa.String, nullable=False),
    sa.Column("parent_id", sa.String, sa.ForeignKey("units.id"), index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

account_audit = sa.Table(
    "account_audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("username", sa.String, nullable=False),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_account_audit_ts", "ts"),
    sa.Index("ix_account_audit_username", "username", "ts"),
)

# ---- forms generated and signed in a session (migration 0007) ----------------------

forms = sa.Table(
    "forms",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("action_id", sa.String, nullable=False),
    sa.Column("session_id", sa.String, nullable=False),
    sa.Column("call_id", sa.String, nullable=False),
    sa.Column("terminal_id", sa.String, nullable=False),
    sa.Column("template", sa.String, nullable=False),
    sa.Column("state", sa.String, nullable=False),  # presented, signed, declined
    sa.Column("context", sa.JSON, nullable=False),  # what the template was filled with
    sa.Column("view_key", sa.String, nullable=False),  # in `url`: the pages open in a frame
    sa.Column("html", sa.Text, nullable=False),  # the form as presented (its SHA-256 below)
    sa.Column("unsigned_sha256", sa.String, nullable=False),
    sa.Column("presented_by", sa.String, nullable=False),
    sa.Column("presented_at", UTCDateTime, nullable=False),
    sa.Column("sha256", sa.String),  # the signed PDF's
    sa.Column("path", sa.String),  # the signed PDF, relative to [recording] dir
    sa.Column("closed_by", sa.String),  # who signed or declined
    sa.Column("closed_at", UTCDateTime),
    sa.Index("ix_forms_action", "action_id"),
    sa.Index("ix_forms_session", "session_id"),
)
