"""visit spool: workers write visit files, the compactor folds each exactly once

``visit_log.n`` lets one row stand for n identical visits (the compactor
counts a file's lines before it logs them); rows an older release appends
without it count once. ``visit_spools`` names the files already folded, in
the transaction that folded them, so a file is never folded twice.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visit_log") as batch:
        batch.add_column(sa.Column("n", sa.Integer, nullable=False, server_default="1"))
    op.create_table(
        "visit_spools",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("visit_spools")
    with op.batch_alter_table("visit_log") as batch:
        batch.drop_column("n")
