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


def test_active_keys_sharing_a_name_are_renamed_before_the_index_is_made(store_url: str) -> None:
    from alembic import command

    from steadylink.links.migrate import _config

    engine = sa.create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    config = _config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        if current_revision(engine) is None:
            command.upgrade(config, "0003")
        else:  # the session's PostgreSQL database is at head already
            command.downgrade(config, "0003")
        add = sa.text(
            "INSERT INTO api_keys (id, name, role, prefix, key_hash, created_at, revoked_at) "
            "VALUES (:id, :name, 1, 'slk_', :id, :at, :revoked)"
        )
        for key_id, at, revoked in [("aa01", "2026-01-01", None), ("aa02", "2026-01-02", None),
                                    ("aa03", "2026-01-03", "2026-01-04"), ("aa04", "2026-01-05", None)]:  # fmt: skip
            conn.execute(add, {"id": key_id, "name": "ci", "at": at, "revoked": revoked})
    assert upgrade_to_head(engine) == head_revision()
    with engine.connect() as conn:
        names = dict(conn.execute(sa.text("SELECT id, name FROM api_keys")).all())
        # the oldest active key keeps the name; a revoked one is left as it was
        assert names == {"aa01": "ci", "aa02": "ci (aa02)", "aa03": "ci", "aa04": "ci (aa04)"}
    engine.dispose()
