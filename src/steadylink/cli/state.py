"""The root options every command shares, and the store they lead to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from steadylink.clock import Clock, SystemClock
from steadylink.datadir import secure_data_dir
from steadylink.errors import StoreError
from steadylink.links.codes import RandomSource, SystemRandom
from steadylink.links.compat import check_schema
from steadylink.links.files import FileStore
from steadylink.links.migrate import upgrade_to_head
from steadylink.links.sql_store import SqlStore, open_store
from steadylink.settings import Settings, load_settings


@dataclass
class CliState:
    """What the root callback parsed; settings are loaded on first use, not for ``--help``."""

    data_dir: Path | None = None
    database: str | None = None
    config: Path | None = None
    clock: Clock = field(default_factory=SystemClock)
    rng: RandomSource = field(default_factory=SystemRandom)
    _settings: Settings | None = None

    def settings(self, **overrides: Any) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config, data_dir=self.data_dir, database=self.database)
            secure_data_dir(self._settings.data_dir)
        return self._settings.with_overrides(**overrides) if overrides else self._settings

    def files(self) -> FileStore:
        settings = self.settings()
        return FileStore(settings.files_dir, max_bytes=settings.links.upload_max_bytes)


def state_of(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


@contextmanager
def ready_store(settings: Settings) -> Iterator[SqlStore]:
    """The links store at a schema that fits: a fresh database is migrated, an old one refused,
    one a newer release migrated used as it is if it still has what this one reads."""
    store = open_store(settings.database_url)
    try:
        fit = check_schema(store.engine)
        if fit.revision is None:
            upgrade_to_head(store.engine)
        elif not fit.is_servable:
            raise StoreError(f"The links database does not fit this steadylink: {fit.explain()}.")
        yield store
    finally:
        store.close()
