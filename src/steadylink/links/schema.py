"""The database schema, shared by both stores and by Alembic migrations."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

links = Table(
    "links",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("code_folded", String(64), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),
    Column("url", Text, nullable=True),
    Column("file_sha256", String(64), nullable=True),
    Column("file_name", String(255), nullable=True),
    Column("file_size", BigInteger, nullable=True),
    Column("file_content_type", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("max_visits", BigInteger, nullable=True),
    Column("visits", BigInteger, nullable=False, server_default="0"),
    Column("is_disabled", Boolean, nullable=False, server_default="0"),
    Column("password_hash", String(255), nullable=True),
    Column("owner", String(64), nullable=True),
    Index("ix_links_created_at", "created_at"),
    Index("ix_links_owner", "owner"),
    sqlite_with_rowid=False,
)

clicks_daily = Table(
    "clicks_daily",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

click_referrers = Table(
    "click_referrers",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("host", String(255), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

click_agents = Table(
    "click_agents",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("family", String(64), primary_key=True),
    Column("is_bot", Boolean, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# Visits on their way into the tables above. Workers write them to spool files
# (``links/spool.py``); the compactor appends a batch of files here (no index
# but the row id, so an append writes sequential pages), one row per distinct
# visit with its count ``n``, and folds them in the same transaction
# (``SqlStore.fold_visits``). Releases before 0003 appended here themselves.
visit_log = Table(
    "visit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("host", String(255), nullable=False),
    Column("family", String(64), nullable=False),
    Column("is_bot", Boolean, nullable=False),
    Column("n", Integer, nullable=False, server_default="1"),
)

# Spool files already folded, recorded in the transaction that folded them.
visit_spools = Table(
    "visit_spools",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("folded_at", DateTime(timezone=True), nullable=False),
)

link_changes = Table(
    "link_changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("code", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("role", Integer, nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # one active key per name (a revoked key's name may be used again)
    Index(
        "ux_api_keys_active_name",
        "name",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
)
