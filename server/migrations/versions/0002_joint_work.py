"""Joint actions, their audit chain, pending matters (issue 6).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the joint-work change."""


def downgrade() -> None:
    """Filled in by the joint-work change."""
