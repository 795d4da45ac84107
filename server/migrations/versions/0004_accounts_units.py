"""The city's units (city, district, sub-district, village), a unit for sites and managers,
the change-password-at-next-login flag, and the account audit trail.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("level", sa.String, nullable=False),
        sa.Column("parent_id", sa.String, sa.ForeignKey("units.id")),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_units_parent_id", "units", ["parent_id"])
    op.add_column("users", sa.Column("unit_id", sa.String))
    op.add_column("users", sa.Column("must_change_password", sa.Boolean, nullable=False,
                                     server_default=sa.false()))
    op.create_index("ix_users_unit_id", "users", ["unit_id"])
    op.add_column("sites", sa.Column("unit_id", sa.String))
    op.create_index("ix_sites_unit_id", "sites", ["unit_id"])
    op.create_table(
        "account_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("actor", sa.String, nullable=False),
        sa.Column("username", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_account_audit_ts", "account_audit", ["ts"])
    op.create_index("ix_account_audit_username", "account_audit", ["username", "ts"])


def downgrade() -> None:
    op.drop_table("account_audit")
    for table in ("sites", "users"):
        op.drop_index(f"ix_{table}_unit_id", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("unit_id")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
    op.drop_table("units")
