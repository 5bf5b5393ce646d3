"""Every backup attempt in the journal, good or failed, and what the watch reads back from it.

Backups run in two places: ``steadylink backup`` (by hand or from cron; the
guard has no schedule of its own) and the verified snapshot a deploy takes
before staging. Both go through ``recorded_backup``, which journals each
attempt as ``backup.created`` (where, how many links) or ``backup.failed``
(why, in one sentence: a full disk, a target that cannot be written, the
database not answering, a snapshot that failed its checks), and turns any
failure into a ``StoreError`` carrying that sentence, so the command prints
it instead of a stack trace.

The journal lives in ``ops.db``, so a guard running in another process reads
the attempts back (``read_backup_state``, through the journal's (kind, at)
index, cheap every few seconds): the ``backup_failed`` rule fires while the
latest attempt is a failed one, and ``backup_age`` counts a verified backup
written anywhere, not only in ``<data dir>/backups``.
"""

from __future__ import annotations

import errno
import sqlite3
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from steadylink.clock import Clock
from steadylink.errors import SteadylinkError, StoreError
from steadylink.links.backup import BackupReport, create_backup, default_backup_path
from steadylink.settings import Settings
from steadylink.watch.journal import Journal
from steadylink.watch.opsdb import backup_ops_db

CREATED, FAILED = "backup.created", "backup.failed"


@dataclass(frozen=True)
class BackupDone:
    report: BackupReport
    ops_copy: Path | None  # the copy of ops.db beside it, if one was asked for and there is an ops.db


@dataclass(frozen=True)
class BackupState:
    """The latest attempt, as the rules need it (unix seconds)."""

    failed_reason: str | None = None  # set while the latest attempt is a failed one
    failed_at: float | None = None
    newest_created_at: float | None = None


def recorded_backup(
    *,
    settings: Settings,
    clock: Clock,
    journal: Journal | None,
    output: Path | None = None,
    purpose: str = "backup",
    ops_copy: bool = False,
) -> BackupDone:
    """``create_backup`` (and, with ``ops_copy``, a copy of ``ops.db`` beside it), journaled.

    Raises ``StoreError`` with the failure's one sentence; the journal gets the same.
    """
    target = (output or default_backup_path(settings, clock)).absolute()
    try:
        report = create_backup(settings=settings, clock=clock, output=target)
        ops = None
        if ops_copy:
            ops = backup_ops_db(settings.data_dir, target.with_name(target.stem + "-ops.db"))
    except Exception as exc:
        reason = failure_reason(exc, target)
        if journal is not None:
            journal.append(
                FAILED, f"{purpose} failed: {reason}", severity="error",
                body={"reason": reason, "target": str(target), "purpose": purpose,
                      "error": type(exc).__name__, "detail": _first_line(exc)},
            )  # fmt: skip
        raise StoreError(reason) from None
    backup = report.backup
    if journal is not None:
        journal.append(
            CREATED, f"{purpose}: {backup.path} ({backup.links} links, verified)",
            body={"target": str(backup.path), "purpose": purpose, "links": backup.links,
                  "bytes": backup.size, "revision": backup.revision},
        )  # fmt: skip
    return BackupDone(report, ops)


def failure_reason(exc: BaseException, target: Path) -> str:
    """Why a backup failed, in one sentence that names the place (never a stack trace)."""
    if isinstance(exc, OSError):
        where = exc.filename or target.parent
        if exc.errno == errno.ENOSPC:
            return f"The backup could not be written to {target.parent}: its disk is full."
        if exc.errno in (errno.EEXIST, errno.ENOTDIR):
            return f"The backup could not be written under {where}: it is not a folder."
        return f"The backup could not be written to {where}: {exc.strerror or type(exc).__name__}."
    if isinstance(exc, SteadylinkError):
        return exc.message
    copy_error = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    if isinstance(copy_error, sqlite3.Error):  # the SQLite file being written (PostgreSQL's backup)
        if getattr(copy_error, "sqlite_errorname", "") == "SQLITE_FULL":
            return f"The backup could not be written to {target.parent}: its disk is full."
        return f"The backup could not be written to {target.parent}: {copy_error}."
    if isinstance(exc, SQLAlchemyError):
        # a driver's text may name hosts and users: the journal body keeps it, the sentence says what kind
        return f"The links database did not answer the backup ({type(exc).__name__})."
    return f"The backup failed: {type(exc).__name__}."


def journal_for_backups(settings: Settings, clock: Clock) -> Journal | None:
    """The guard's journal for a command that backs up; None (said on stderr) when ops.db cannot be
    opened: the backup itself must not fail for that."""
    try:
        return Journal.for_data_dir(
            settings.data_dir.resolve(), clock=clock,
            retention=timedelta(days=settings.watch.journal_retention_days),
        )  # fmt: skip
    except (OSError, sqlite3.Error) as exc:
        print(f"backup: this attempt is not journaled, ops.db cannot be opened ({exc})", file=sys.stderr)
        return None


def read_backup_state(journal: Journal) -> BackupState:
    """The newest attempt decides whether backups are failing; the newest success dates the last backup."""
    latest = journal.newest_of((CREATED, FAILED))
    created = latest if latest and latest[0].kind == CREATED else journal.newest_of((CREATED,))
    newest_created = created[0].at.timestamp() if created else None
    if not latest or latest[0].kind != FAILED:
        return BackupState(newest_created_at=newest_created)
    failed = latest[0]
    reason = str(failed.body.get("reason") or failed.message)
    return BackupState(reason, failed.at.timestamp(), newest_created)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]
