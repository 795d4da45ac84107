"""Recordings and their manifests (issue 4).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Filled in by the recording change."""


def downgrade() -> None:
    """Filled in by the recording change."""
