"""Shared fixtures: settings in a temporary data dir, stores on SQLite and PostgreSQL.

PostgreSQL tests use a database of their own per test session, created on the
server at ``STEADYLINK_TEST_POSTGRES`` (default: the local server, trust auth)
and dropped at the end, so parallel runs never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from steadylink.clock import FakeClock
from steadylink.links import schema
from steadylink.links.migrate import upgrade_to_head
from steadylink.links.sql_store import SqlStore, open_store
from steadylink.settings import Settings, load_settings

POSTGRES_ADMIN_URL = os.environ.get(
    "STEADYLINK_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
_TABLES = tuple(table.name for table in schema.metadata.sorted_tables)


class SeqRandom:
    """A deterministic RandomSource: repeats a fixed sequence of characters."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def choice(self, seq: str) -> str:
        ch = self.text[self.i % len(self.text)]
        self.i += 1
        assert ch in seq
        return ch


@pytest.fixture
def seq_random() -> type[SeqRandom]:
    return SeqRandom


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={}, data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"steadylink_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for the store suite ({POSTGRES_ADMIN_URL}): {exc}")
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name)
    engine = sa.create_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'links.db'}"
    url: str = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY"))
    engine.dispose()
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    upgrade_to_head(opened.engine)
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'links.db'}")
    upgrade_to_head(opened.engine)
    yield opened
    opened.close()
