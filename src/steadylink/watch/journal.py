"""The event journal: one append-only stream of everything the guard saw and did.

Deploy steps and verdicts, weight changes, promotions, rollbacks, restarts of
supervised processes, probe failures and recoveries, alert transitions,
notifications: each is one ``Event`` in ``ops.db`` (time in UTC to the
millisecond, a dotted ``kind`` such as ``deploy.step``, the release it is
about, a severity, a one-line message and a JSON body). Incidents, the status
page and post-incident reports are written from it.

Guarantee: ``append`` returns after the event is committed to ``ops.db``
(WAL; a crash of the guard loses nothing appended, a power loss may lose the
last moments). When the disk is full or the file refuses a write, ``append``
never raises — the guard must keep serving and probing — and keeps the event
in memory (at most ``PENDING_MAX``) to write it with the next append that
succeeds; what overflows is counted in ``dropped`` and said once on stderr.
``read`` shows those waiting events too (with id 0, after the written ones),
so the guard's API and ``steadylink events`` tell what happened during a
full disk while it lasts; a reader that pages with ``after_id`` sees them
once they are written.
Events are kept for ``retention`` (the ``watch.journal_retention_days``
setting); older ones are pruned at most once an hour, by the appender.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from steadylink.clock import Clock, SystemClock, utc
from steadylink.errors import InvalidInput
from steadylink.watch.opsdb import connect_ops_db, ops_db_path

PENDING_MAX = 10_000
MESSAGE_MAX = 1_000
PRUNE_EVERY = timedelta(hours=1)
_KIND = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    release TEXT,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_at ON events (at_ms);
CREATE INDEX IF NOT EXISTS events_kind_at ON events (kind, at_ms);
"""


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    kind: str
    release: str | None
    severity: Severity
    message: str
    body: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "kind": self.kind,
            "release": self.release,
            "severity": self.severity.value,
            "message": self.message,
            "body": self.body,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Event:
        """An event as ``to_json`` wrote it (the CLI reading the guard's API)."""
        at = datetime.fromisoformat(str(body["at"]).replace("Z", "+00:00"))
        return cls(
            int(body["id"]), at, str(body["kind"]), body.get("release"),
            Severity(body["severity"]), str(body["message"]), dict(body.get("body") or {}),
        )  # fmt: skip


Listener = Callable[[Event], None]


def check_kind(kind: str) -> str:
    if not _KIND.fullmatch(kind):
        raise InvalidInput(
            f"Event kind {kind!r} must be dotted lower-case words, e.g. 'deploy.step'.", field="kind"
        )
    return kind


class Journal:
    """The guard's journal over ``ops.db``; safe to share between threads."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Clock | None = None,
        retention: timedelta = timedelta(days=400),
    ) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self.retention = retention
        self.dropped = 0
        self._lock = threading.Lock()
        self._pending: deque[tuple[int, str, str | None, str, str, str]] = deque()
        self._listeners: list[Listener] = []
        self._last_prune: datetime | None = None
        self._is_failing = False
        self._conn = connect_ops_db(path)
        self._conn.executescript(_SCHEMA)

    @classmethod
    def for_data_dir(cls, data_dir: Path, **kwargs: Any) -> Journal:
        return cls(ops_db_path(data_dir), **kwargs)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every event appended from now on (e.g. ``up``'s terminal)."""
        self._listeners.append(listener)

    # writing -----------------------------------------------------------------

    def append(
        self,
        kind: str,
        message: str,
        *,
        release: str | None = None,
        severity: Severity | str = Severity.INFO,
        body: dict[str, Any] | None = None,
    ) -> Event:
        """Record one event; never raises for a full or refusing disk (see the module docstring)."""
        check_kind(kind)
        level = Severity(severity)
        text = " ".join(message.split())[:MESSAGE_MAX]
        payload = json.dumps(body or {}, default=str, sort_keys=True)
        at = utc(self.clock.now())
        row = (_to_ms(at), kind, release, level.value, text, payload)
        with self._lock:
            self._pending.append(row)
            event_id = self._flush()
            self._prune_if_due(at)
        event = Event(event_id, _from_ms(row[0]), kind, release, level, text, json.loads(payload))
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:  # a listener's bug must not stop the journal
                print(f"journal: a listener failed on {kind}: {exc!r}", file=sys.stderr)
        return event

    def _flush(self) -> int:
        """Write what is pending; the id of the last row written, or 0 if nothing could be."""
        last = 0
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                for row in self._pending:
                    cursor = self._conn.execute(
                        "INSERT INTO events (at_ms, kind, release, severity, message, body)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    last = cursor.lastrowid or 0
            self._pending.clear()
            if self._is_failing:
                self._is_failing = False
                print("journal: writing to ops.db again", file=sys.stderr)
        except sqlite3.Error as exc:
            if not self._is_failing:
                self._is_failing = True
                print(
                    f"journal: cannot write to {self.path} ({exc}); keeping events in memory",
                    file=sys.stderr,
                )
            while len(self._pending) > PENDING_MAX:
                self._pending.popleft()
                self.dropped += 1
            return 0
        return last

    def _prune_if_due(self, now: datetime) -> None:
        if self._last_prune is not None and now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        try:
            with self._conn:
                self._conn.execute("DELETE FROM events WHERE at_ms < ?", (_to_ms(now - self.retention),))
        except sqlite3.Error:
            pass  # a full disk: try again in an hour

    # reading -----------------------------------------------------------------

    def read(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Sequence[str] = (),
        release: str | None = None,
        after_id: int | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[Event]:
        """Events in appending order; ``kinds`` match exactly or as a prefix (``deploy``: ``deploy.*``).

        Events waiting in memory for a disk that refused them count as the newest.
        """
        with self._lock:
            written = read_events(
                self._conn,
                since=since,
                until=until,
                kinds=kinds,
                release=release,
                after_id=after_id,
                limit=limit,
                newest_first=newest_first,
            )
            if after_id is not None or not self._pending:
                return written
            waiting = [
                e for e in (_event((0, *row)) for row in self._pending)
                if (since is None or e.at >= utc(since)) and (until is None or e.at < utc(until))
                and (release is None or e.release == release)
                and (not kinds or any(e.kind == k or e.kind.startswith(k + ".") for k in kinds))
            ]  # fmt: skip
        together = waiting[::-1] + written if newest_first else written + waiting
        return together[: max(1, limit)]

    def newest_of(self, kinds: Sequence[str], *, limit: int = 1) -> list[Event]:
        """The newest events of exactly these kinds, newest first.

        Through the (kind, at) index, so it costs the same on a journal of any size and a
        reading may ask every few seconds (``read`` matches prefixes, which scans the table).
        """
        for kind in kinds:
            check_kind(kind)
        marks = ", ".join("?" for _ in kinds)
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, at_ms, kind, release, severity, message, body FROM events"
                f" WHERE kind IN ({marks}) ORDER BY at_ms DESC, id DESC LIMIT ?",
                (*kinds, max(1, limit)),
            ).fetchall()
        return [_event(r) for r in rows]


def read_events(
    conn: sqlite3.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: Sequence[str] = (),
    release: str | None = None,
    after_id: int | None = None,
    limit: int = 1000,
    newest_first: bool = False,
) -> list[Event]:
    """The query behind ``Journal.read``, on any connection to ``ops.db`` (the CLI opens one read-only)."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if since is not None:
        where.append("at_ms >= ?")
        params.append(_to_ms(utc(since)))
    if until is not None:
        where.append("at_ms < ?")
        params.append(_to_ms(utc(until)))
    if kinds:
        ors = []
        for kind in kinds:
            check_kind(kind)
            ors.append("(kind = ? OR kind LIKE ? ESCAPE '\\')")
            params += [kind, kind.replace("_", "\\_") + ".%"]
        where.append("(" + " OR ".join(ors) + ")")
    if release is not None:
        where.append("release = ?")
        params.append(release)
    if after_id is not None:
        where.append("id > ?")
        params.append(after_id)
    order = "DESC" if newest_first else "ASC"
    params.append(max(1, min(limit, 100_000)))
    try:
        rows = conn.execute(
            "SELECT id, at_ms, kind, release, severity, message, body FROM events"
            f" WHERE {' AND '.join(where)} ORDER BY id {order} LIMIT ?",
            params,
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # a data dir whose guard never ran
        raise
    return [_event(r) for r in rows]


def _event(row: tuple[Any, ...]) -> Event:
    return Event(row[0], _from_ms(row[1]), row[2], row[3], Severity(row[4]), row[5], json.loads(row[6]))


def _to_ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
