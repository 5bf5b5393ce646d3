"""Verified backups of the links database, and restores that land whole or not at all.

A backup is always one SQLite file with the steadylink schema and its Alembic
revision, whatever the live database is:

* SQLite: the online backup API copies a consistent snapshot while the service
  keeps serving (readers and writers are not blocked in WAL mode).
* PostgreSQL: every table is read in one ``REPEATABLE READ READ ONLY``
  transaction (one snapshot, like ``pg_dump`` takes) and written into a fresh
  SQLite file migrated to the same revision. ``pg_dump`` is not used: its
  version must match the server's, and a SQLite file can be checked and
  restored into either database.

Each backup is written to a temporary name, checked (``PRAGMA integrity_check``,
revision at head, link count equal to the snapshot's) and only then renamed
into place, so a file under its final name is always a good one.

A restore checks the file the same way first, refuses a corrupt or foreign one
without touching anything, saves a safety backup of the current data, and
then replaces every table's rows in ONE transaction on the live database
(DELETE + INSERT). Why not swap the SQLite file: running workers keep the old
file open and would go on serving (and writing to) the replaced copy. Why not
the backup API into the live file: it would also replace ``link_changes``, the
log workers poll to drop cached links, and move its sequence backwards, so
they would miss the change. In one transaction readers see the old rows until
the commit and the new ones after it, on SQLite and PostgreSQL alike, and
every code that existed before or after is written to ``link_changes``.

Uploaded files are not in the backup: they live content-addressed under
``<data_dir>/files`` and never change once written, so ``rsync`` copies them
safely; the backup reports file links whose file is missing.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, delete, func, insert, literal, select, text
from sqlalchemy.engine import make_url

from steadylink.clock import Clock
from steadylink.datadir import make_private
from steadylink.errors import InvalidInput, StoreError
from steadylink.links import schema
from steadylink.links.compat import find_problems
from steadylink.links.files import FileStore
from steadylink.links.migrate import (
    MIGRATIONS_DIR,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from steadylink.links.sql_store import open_store
from steadylink.settings import Settings

SQLITE_HEADER = b"SQLite format 3\x00"
# link_changes is the workers' cache-invalidation log, not data: never copied.
DATA_TABLES = tuple(t for t in schema.metadata.sorted_tables if t.name != "link_changes")
_BATCH = 2000


@dataclass(frozen=True, slots=True)
class BackupFile:
    path: Path
    size: int
    links: int
    revision: str


@dataclass(frozen=True, slots=True)
class BackupReport:
    backup: BackupFile
    file_links: int
    missing_files: int


@dataclass(frozen=True, slots=True)
class RestoreReport:
    restored: BackupFile
    safety_backup: BackupFile | None


def default_backup_path(settings: Settings, clock: Clock, *, prefix: str = "links") -> Path:
    stamp = clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = settings.data_dir / "backups"
    path = folder / f"{prefix}-{stamp}.db"
    n = 2
    while path.exists():
        path = folder / f"{prefix}-{stamp}-{n}.db"
        n += 1
    return path


def create_backup(*, settings: Settings, clock: Clock, output: Path | None = None) -> BackupReport:
    """Snapshot the links database into a verified SQLite file; return what was written."""
    target = (output or default_backup_path(settings, clock)).absolute()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    make_private(target.parent)
    with _temporary_file(target.parent, target.name) as tmp:
        if _is_sqlite(settings):
            links = _snapshot_sqlite(_sqlite_path(settings), tmp)
        else:
            links = _snapshot_postgres(settings.database_url, tmp)
        make_private(tmp)  # every link, key hash and password hash: the owner's only
        # A newer release may have migrated the database ahead of this steadylink (expand/
        # contract): the snapshot is still sound if it has everything this one knows.
        checked = verify_backup(tmp, expect_links=links, require_head=True, allow_newer=True)
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(target.parent)
    file_links, missing = _check_files(target, settings)
    backup = BackupFile(target, target.stat().st_size, checked.links, checked.revision)
    return BackupReport(backup, file_links, missing)


def verify_backup(
    path: Path,
    *,
    expect_links: int | None = None,
    require_head: bool = False,
    allow_newer: bool = False,
) -> BackupFile:
    """Check that ``path`` is a sound steadylink backup; raise StoreError saying why not.

    ``allow_newer`` accepts a revision newer than this steadylink knows when the schema
    still has every table and column it reads (``links/compat.py``).
    """
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist.", field="file") from None
    if header != SQLITE_HEADER:
        raise StoreError(f"{path} is not an SQLite file, so not a steadylink backup.")
    conn = _read_only(path)
    try:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        if integrity != ["ok"]:
            raise StoreError(f"{path} is corrupt (integrity_check: {'; '.join(integrity[:3])}).")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"alembic_version", *(t.name for t in DATA_TABLES)} <= tables:
            raise StoreError(f"{path} is an SQLite file but not a steadylink backup.")
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        links = int(conn.execute("SELECT count(*) FROM links").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} cannot be read as a steadylink backup: {exc}.") from None
    finally:
        conn.close()
    revision = str(row[0]) if row else ""
    if allow_newer and revision and revision not in known_revisions() and _fits(path):
        return BackupFile(path, path.stat().st_size, links, revision)
    if revision not in known_revisions():
        raise StoreError(
            f"{path} has schema revision {revision or 'none'!r}, which this steadylink does "
            f"not know (it knows up to {head_revision()}); use the steadylink that made it."
        )
    if require_head and revision != head_revision():
        raise StoreError(f"{path} is at revision {revision}, not at head {head_revision()}.")
    if expect_links is not None and links != expect_links:
        raise StoreError(f"{path} holds {links} links, the database held {expect_links}.")
    return BackupFile(path, path.stat().st_size, links, revision)


def restore_backup(*, settings: Settings, clock: Clock, source: Path) -> RestoreReport:
    """Replace the links database's contents with ``source``'s, in one transaction."""
    verify_backup(source)
    store = open_store(settings.database_url)
    try:
        revision = current_revision(store.engine)
        if revision not in (None, head_revision()):
            raise StoreError(
                f"The links database is at revision {revision}; run `steadylink db upgrade` first."
            )
        safety = None
        if revision is not None:
            safety_path = default_backup_path(settings, clock, prefix="pre-restore")
            safety = create_backup(settings=settings, clock=clock, output=safety_path).backup
        else:
            upgrade_to_head(store.engine)
        with _temporary_file(Path(tempfile.gettempdir()), "restore") as work:
            shutil.copyfile(source, work)
            work_engine = create_engine(f"sqlite:///{work}")
            try:
                upgrade_to_head(work_engine)  # a backup from an older known revision
                with work_engine.connect() as src, store.engine.begin() as dst:
                    links = _replace_rows(src, dst, now=clock.now())
            finally:
                work_engine.dispose()
    finally:
        store.close()
    return RestoreReport(BackupFile(source, source.stat().st_size, links, head_revision()), safety)


def _fits(path: Path) -> bool:
    engine = create_engine(f"sqlite:///{path}")
    try:
        return not find_problems(engine, schema.metadata)
    finally:
        engine.dispose()


def known_revisions() -> set[str]:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return {rev.revision for rev in script.walk_revisions()}


# snapshots -------------------------------------------------------------------


def _snapshot_sqlite(db_path: Path, tmp: Path) -> int:
    if not db_path.is_file():
        raise StoreError(f"There is no links database at {db_path}; nothing to back up.")
    source = sqlite3.connect(db_path, timeout=10)
    try:
        # One read transaction: the count and the pages copied see the same snapshot.
        source.execute("BEGIN")
        links = int(source.execute("SELECT count(*) FROM links").fetchone()[0])
        copy = sqlite3.connect(tmp)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            copy.close()
        source.rollback()
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":  # the copy's disk: reading never fills one
            raise StoreError(f"The backup could not be written to {tmp.parent}: its disk is full.") from None
        raise StoreError(f"Backup of {db_path} failed: {exc}.") from None
    finally:
        source.close()
    return links


def _snapshot_postgres(url: str, tmp: Path) -> int:
    copy_engine = create_engine(f"sqlite:///{tmp}")
    store = open_store(url)
    try:
        upgrade_to_head(copy_engine)
        snapshot = store.engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with snapshot, snapshot.begin(), copy_engine.begin() as copy:
            snapshot.execute(text("SET TRANSACTION READ ONLY"))
            links = int(
                snapshot.execute(select(func.count()).select_from(schema.links)).scalar_one()
            )
            for table in DATA_TABLES:
                _copy_table(snapshot, copy, table)
    finally:
        store.close()
        copy_engine.dispose()
    return links


def _replace_rows(src: Connection, dst: Connection, *, now: datetime) -> int:
    changed = insert(schema.link_changes).from_select(
        ["code", "at"], select(schema.links.c.code, _at(dst, now))
    )
    # The first statement writes, so SQLite takes its write lock before anything is read.
    dst.execute(changed)  # codes that exist now: their cached copies must go
    for table in reversed(DATA_TABLES):
        dst.execute(delete(table))
    for table in DATA_TABLES:
        _copy_table(src, dst, table)
    dst.execute(changed)  # codes that exist after the restore
    return int(dst.execute(select(func.count()).select_from(schema.links)).scalar_one())


def _copy_table(src: Connection, dst: Connection, table: Any) -> None:
    to_sqlite = dst.dialect.name == "sqlite"
    result = src.execution_options(yield_per=_BATCH).execute(select(table))
    for batch in result.mappings().partitions():
        rows = [{k: _portable(v, to_sqlite) for k, v in row.items()} for row in batch]
        dst.execute(insert(table), rows)


def _portable(value: Any, to_sqlite: bool) -> Any:
    """Timestamps as UTC: naive for SQLite (as the store keeps them), aware for PostgreSQL."""
    if not isinstance(value, datetime):
        return value
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.replace(tzinfo=None) if to_sqlite else aware


def _at(conn: Connection, now: datetime) -> Any:
    return literal(_portable(now, conn.dialect.name == "sqlite"), schema.link_changes.c.at.type)


# files and paths -------------------------------------------------------------


def _check_files(backup: Path, settings: Settings) -> tuple[int, int]:
    files = FileStore(settings.files_dir, max_bytes=settings.links.upload_max_bytes)
    conn = _read_only(backup)
    try:
        digests = [
            r[0]
            for r in conn.execute("SELECT file_sha256 FROM links WHERE file_sha256 IS NOT NULL")
        ]
    finally:
        conn.close()
    missing = sum(1 for sha in set(digests) if not files.path_of(sha).is_file())
    return len(digests), missing


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)


def _is_sqlite(settings: Settings) -> bool:
    return settings.database_url.startswith("sqlite")


def _sqlite_path(settings: Settings) -> Path:
    return Path(make_url(settings.database_url).database or "")


@contextmanager
def _temporary_file(folder: Path, name: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # SQLite creates it; an empty file would be taken for a database
    try:
        yield tmp
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal"), Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "DATA_TABLES",
    "BackupFile",
    "BackupReport",
    "RestoreReport",
    "create_backup",
    "default_backup_path",
    "known_revisions",
    "restore_backup",
    "verify_backup",
]
