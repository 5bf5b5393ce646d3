import sqlalchemy as sa

from steadylink.links.migrate import current_revision, head_revision, is_at_head, upgrade_to_head
from steadylink.links.schema import metadata


def test_upgrade_creates_the_schema_and_is_idempotent(store_url: str) -> None:
    engine = sa.create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    assert upgrade_to_head(engine) == head_revision()
    assert upgrade_to_head(engine) == head_revision()
    assert is_at_head(engine) and current_revision(engine) == head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert set(metadata.tables) <= tables
    engine.dispose()


def test_a_fresh_database_is_not_at_head(tmp_path: object) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/empty.db")
    assert current_revision(engine) is None and not is_at_head(engine)
