"""api keys: one active key per name, held by the database

Approvals and the audit log name the key that acted; two active keys of one
name would make them ambiguous. The service refused a second one, but two
creates at the same instant could both pass its check: a partial unique index
(active keys only: a revoked key's name may be used again) makes it a rule.

Active keys that already share a name keep the oldest one's name; each later
one is renamed ``NAME (ID)``, so nothing is lost and the index can be made.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ACTIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, name FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id")
    ).all()
    seen: set[str] = set()
    for key_id, name in rows:
        if name in seen:
            renamed = f"{name[: 128 - len(key_id) - 3]} ({key_id})"
            rename = sa.text("UPDATE api_keys SET name = :name WHERE id = :id")
            conn.execute(rename, {"name": renamed, "id": key_id})
        seen.add(name)
    op.create_index(
        "ux_api_keys_active_name", "api_keys", ["name"], unique=True,
        sqlite_where=ACTIVE, postgresql_where=ACTIVE,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ux_api_keys_active_name", table_name="api_keys")
