"""The guard's own SQLite database, ``<data dir>/ops.db``.

It holds what the guard observes and decides — the event journal, probe
results, alert state, incidents — apart from the links store, so that no
release's migration ever touches it and it works the same when links live in
PostgreSQL. Each part creates its own tables (``CREATE TABLE IF NOT EXISTS``)
on the connection this module opens.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

OPS_DB_NAME = "ops.db"


def ops_db_path(data_dir: Path) -> Path:
    return data_dir / OPS_DB_NAME


def connect_ops_db(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with a busy timeout; the file is readable by its owner only.

    ``check_same_thread`` is off: callers that share a connection between
    threads hold their own lock around it.
    """
    if read_only:
        uri = f"file:{path}?mode=ro"
        return sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a crash of the process loses nothing committed; a power
    # loss may lose the last transactions, never corrupt the file.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def backup_ops_db(data_dir: Path, target: Path) -> Path | None:
    """A consistent copy of ``ops.db`` (journal, incidents, probes) at ``target``; None if there is none.

    SQLite's online backup: the guard keeps writing meanwhile. Written to a
    temporary name and renamed, so ``target`` is whole or absent.
    """
    source_path = ops_db_path(data_dir)
    if not source_path.exists():
        return None
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    source = connect_ops_db(source_path, read_only=True)
    try:
        copy = sqlite3.connect(tmp)
        try:
            source.backup(copy)
        finally:
            copy.close()
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    finally:
        source.close()
        tmp.unlink(missing_ok=True)
    return target
