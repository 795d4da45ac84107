"""Documents captured in a session, their access log, and the materials ticked as shown.

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "session_documents",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("path", sa.String, nullable=False),
        sa.Column("sha256", sa.String, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("added_by", sa.String, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS),
    )
    op.create_index("ix_session_documents_session", "session_documents",
                    ["session_id", "created_at"])
    op.create_index("ix_session_documents_created", "session_documents", ["created_at"])
    op.create_table(
        "document_access",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("document_id", sa.String, sa.ForeignKey("session_documents.id"),
                  nullable=False),
        sa.Column("username", sa.String, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("remote", sa.String),
    )
    op.create_index("ix_document_access_document", "document_access", ["document_id", "at"])
    op.create_table(
        "session_materials",
        sa.Column("session_id", sa.String, sa.ForeignKey("sessions.id"), primary_key=True),
        sa.Column("item", sa.String, primary_key=True),
        sa.Column("shown", sa.Boolean, nullable=False),
        sa.Column("by", sa.String, nullable=False),
        sa.Column("at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("session_materials")
    op.drop_table("document_access")
    op.drop_table("session_documents")
