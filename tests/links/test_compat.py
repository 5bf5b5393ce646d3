"""Expand/contract: a release on a schema a newer release migrated."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from steadylink.errors import StoreError
from steadylink.links.compat import check_schema, prepare_schema
from steadylink.links.migrate import head_revision, upgrade_to_head


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'links.db'}")
    upgrade_to_head(engine)
    return engine


def migrate_ahead(engine: sa.Engine, *statements: str) -> None:
    """What a newer release's migration 0099 would do."""
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))


def test_a_schema_at_head_fits(engine: sa.Engine) -> None:
    fit = check_schema(engine)
    assert fit.is_at_head and fit.is_servable and not fit.is_ahead


def test_an_added_nullable_column_and_table_fit_without_migrating(engine: sa.Engine) -> None:
    migrate_ahead(
        engine,
        "ALTER TABLE links ADD COLUMN note TEXT",
        "ALTER TABLE links ADD COLUMN weight INTEGER NOT NULL DEFAULT 1",
        "CREATE TABLE tags (code TEXT PRIMARY KEY)",
        "CREATE INDEX ix_links_note ON links (note)",
    )
    fit = check_schema(engine)
    assert fit.is_ahead and fit.is_servable and fit.problems == ()
    assert "no migration" in prepare_schema(engine)
    with engine.connect() as conn:  # untouched: the newer release's revision stays
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0099"


def test_a_dropped_column_is_named(engine: sa.Engine) -> None:
    migrate_ahead(engine, "DROP INDEX ix_links_owner", "ALTER TABLE links DROP COLUMN owner")
    fit = check_schema(engine)
    assert not fit.is_servable
    assert fit.problems == ("column links.owner is missing",)
    with pytest.raises(StoreError, match=r"0099.*links\.owner is missing"):
        prepare_schema(engine)


def test_a_dropped_table_and_a_required_new_column_are_named(engine: sa.Engine) -> None:
    migrate_ahead(
        engine,
        "DROP TABLE click_referrers",
        "ALTER TABLE links ADD COLUMN tenant TEXT NOT NULL DEFAULT 'x'",
        "ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL",
    )
    problems = check_schema(engine).problems
    assert "table click_referrers is missing" in problems
    assert any(p.startswith("column api_keys.scope is NOT NULL without a default") for p in problems)
    assert not any("links.tenant" in p for p in problems)


def test_a_schema_behind_is_migrated(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    fit = check_schema(engine)
    assert fit.revision is None and not fit.is_servable and not fit.is_ahead
    assert prepare_schema(engine) == f"schema at {head_revision()}"
    assert check_schema(engine).is_at_head
