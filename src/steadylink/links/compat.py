"""Expand, then contract: whether the database's schema still fits this release.

Releases ship schema changes in two steps. A release may *expand* the schema
(add tables, nullable columns or columns with a default, indexes): the release
serving before it keeps working on that schema, so staging can start both on
the migrated copy and a rollback needs no down-migration. Dropping or renaming
what an older release reads (the *contract* step) comes one release later,
when no release that reads it serves any more.

So a release started on a database whose revision it does not know (a newer
release migrated it) does not migrate and does not refuse: it checks that
every table and column it reads is there, and that no column it does not know
would refuse its inserts (NOT NULL without a default). ``check_schema`` says
what it found; ``serve`` and ``/readyz`` act on it. Column types are not
compared: changing a type in place is a contract step too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, inspect
from sqlalchemy.exc import SQLAlchemyError

from steadylink.errors import StoreError
from steadylink.links.migrate import MIGRATIONS_DIR, current_revision, head_revision, upgrade_to_head
from steadylink.links.schema import metadata as own_metadata


@dataclass(frozen=True)
class SchemaFit:
    """The database's revision as this release sees it, and what would break it."""

    revision: str | None
    head: str
    is_known: bool
    problems: tuple[str, ...] = ()

    @property
    def is_at_head(self) -> bool:
        return self.revision == self.head

    @property
    def is_ahead(self) -> bool:
        """A newer release migrated it: this release does not know the revision."""
        return self.revision is not None and not self.is_known

    @property
    def is_servable(self) -> bool:
        return self.is_at_head or (self.is_ahead and not self.problems)

    def explain(self) -> str:
        """One sentence for the operator: why this release cannot serve this schema."""
        if self.is_servable:
            return f"the schema ({self.revision}) fits this release (newest {self.head})"
        if not self.is_ahead:
            where = self.revision or "an empty database"
            return f"the schema is at {where}, this release needs {self.head}; run `steadylink db upgrade`"
        return (
            f"the schema is at revision {self.revision}, newer than this release knows "
            f"(its newest is {self.head}), and a migration broke what it reads: "
            f"{'; '.join(self.problems)}. Expand in one release, contract in a later one"
        )


@cache
def known_revisions() -> frozenset[str]:
    """Every revision in this release's own migrations folder."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return frozenset(s.revision for s in script.walk_revisions())


def check_schema(engine: Engine, metadata: MetaData = own_metadata) -> SchemaFit:
    """Read the revision; if it is ahead of this release, look for what would break it."""
    revision = current_revision(engine)
    fit = SchemaFit(revision, head_revision(), revision is None or revision in known_revisions())
    if not fit.is_ahead:
        return fit
    return SchemaFit(revision, fit.head, False, tuple(find_problems(engine, metadata)))


def find_problems(engine: Engine, metadata: MetaData) -> list[str]:
    """What this release reads that the schema lacks, and columns that would refuse its inserts."""
    try:
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        problems: list[str] = []
        for table in metadata.sorted_tables:
            if table.name not in tables:
                problems.append(f"table {table.name} is missing")
                continue
            found = {c["name"]: c for c in inspector.get_columns(table.name)}
            problems += [
                f"column {table.name}.{c.name} is missing" for c in table.columns if c.name not in found
            ]
            own = {c.name for c in table.columns}
            problems += [
                f"column {table.name}.{name} is NOT NULL without a default (this release's inserts "
                "would fail)"
                for name, column in found.items()
                if name not in own and not column.get("nullable", True) and column.get("default") is None
            ]
    except SQLAlchemyError as exc:
        raise StoreError(f"Cannot read the schema: {exc.__class__.__name__}.") from exc
    return problems


def prepare_schema(engine: Engine) -> str:
    """What ``serve`` does first: migrate a schema behind this release to its head; leave one
    ahead of it alone if it fits (``StoreError`` naming what broke if not). Returns a note."""
    fit = check_schema(engine)
    if not fit.is_ahead:
        return f"schema at {upgrade_to_head(engine)}"
    if fit.problems:
        raise StoreError(f"This release cannot serve this database: {fit.explain()}.")
    return f"schema at {fit.revision}, ahead of this release's {fit.head}; it fits, so no migration"
