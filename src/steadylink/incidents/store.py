"""Incidents in ``ops.db``: the records, what people added, and the journal events they own.

Three tables, made on first use: ``incidents`` (one row each, the editable
parts as JSON), ``incident_updates`` (notes, status changes, reopens — never
edited, only added) and ``incident_events`` (which journal events belong to
which incident: the timeline that writes itself). Everything survives a
restart of the guard; ``steadylink backup`` copies ``ops.db``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steadylink.clock import Clock, SystemClock, utc
from steadylink.errors import NotFound
from steadylink.incidents.impact import Impact, read_impact
from steadylink.incidents.model import Action, Incident, Status, Update
from steadylink.watch.journal import Event, read_events
from steadylink.watch.opsdb import connect_ops_db, ops_db_path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    severity INTEGER NOT NULL,
    status TEXT NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    opened_by TEXT NOT NULL,
    resolved_at_ms INTEGER,
    body TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS incident_updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    status TEXT,
    public_text TEXT
);
CREATE INDEX IF NOT EXISTS incident_updates_incident ON incident_updates (incident_id, id);
CREATE TABLE IF NOT EXISTS incident_events (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    event_id INTEGER NOT NULL,
    PRIMARY KEY (incident_id, event_id)
);
"""


class IncidentStore:
    """Incident rows over one connection to ``ops.db``; safe to share between threads."""

    def __init__(self, path: Path, *, clock: Clock | None = None, read_only: bool = False) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._conn = connect_ops_db(path, read_only=read_only)
        self.read_only = read_only
        if not read_only:
            self._conn.executescript(_SCHEMA)

    @classmethod
    def for_data_dir(cls, data_dir: Path, **kwargs: Any) -> IncidentStore:
        return cls(ops_db_path(data_dir), **kwargs)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # incidents ---------------------------------------------------------------

    def create(self, *, title: str, severity: int, opened_by: str, at: datetime | None = None) -> Incident:
        when = utc(at or self.clock.now())
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "INSERT INTO incidents (title, severity, status, opened_at_ms, opened_by)"
                " VALUES (?, ?, ?, ?, ?)",
                (title, severity, Status.INVESTIGATING.value, to_ms(when), opened_by),
            )
            incident_id = int(cursor.lastrowid or 0)
        return self.get(incident_id)

    def get(self, incident_id: int) -> Incident:
        # an id past SQLite's 64-bit integers names no row (and would not even bind)
        rows = self._select("WHERE id = ?", (incident_id,)) if 0 < incident_id < 2**63 else []
        if not rows:
            raise NotFound(f"No incident {incident_id}; `steadylink incidents` lists them.")
        return rows[0]

    def list_incidents(self, *, since: datetime | None = None, limit: int = 500) -> list[Incident]:
        """Newest first; ``since`` keeps those opened (or still open) after it."""
        if since is None:
            return self._select("ORDER BY id DESC LIMIT ?", (limit,))
        return self._select(
            "WHERE opened_at_ms >= ? OR resolved_at_ms IS NULL OR resolved_at_ms >= ?"
            " ORDER BY id DESC LIMIT ?",
            (to_ms(since), to_ms(since), limit),
        )

    def open_incident(self) -> Incident | None:
        """The newest incident that is not resolved (the one new trouble joins)."""
        rows = self._select("WHERE status != ? ORDER BY id DESC LIMIT 1", (Status.RESOLVED.value,))
        return rows[0] if rows else None

    def save(self, incident: Incident) -> None:
        """Write the editable parts and the status of ``incident`` back."""
        with self._lock, self._conn:
            self._write(incident)

    def save_with_update(
        self,
        incident: Incident,
        *,
        kind: str,
        author: str,
        text: str,
        status: Status | None = None,
        public_text: str | None = None,
    ) -> Update:
        """``save`` and ``add_update`` in one transaction: the change and the line that says it,
        both or neither."""
        when = utc(self.clock.now())
        with self._lock, self._conn:
            self._write(incident)
            update_id = self._insert_update(incident.id, when, kind, author, text, status, public_text)
        return Update(update_id, incident.id, from_ms(to_ms(when)), kind, author, text, status, public_text)

    # updates -----------------------------------------------------------------

    def add_update(
        self,
        incident_id: int,
        *,
        kind: str,
        author: str,
        text: str,
        status: Status | None = None,
        public_text: str | None = None,
        at: datetime | None = None,
    ) -> Update:
        when = utc(at or self.clock.now())
        with self._lock, self._conn:
            update_id = self._insert_update(incident_id, when, kind, author, text, status, public_text)
        return Update(update_id, incident_id, from_ms(to_ms(when)), kind, author, text, status, public_text)

    def updates(self, incident_id: int) -> list[Update]:
        with self._lock:
            rows = self._query(
                "SELECT id, incident_id, at_ms, kind, author, text, status, public_text"
                " FROM incident_updates WHERE incident_id = ? ORDER BY id",
                (incident_id,),
            )
        return [
            Update(r[0], r[1], from_ms(r[2]), r[3], r[4], r[5], Status(r[6]) if r[6] else None, r[7])
            for r in rows
        ]

    # the journal events of an incident --------------------------------------

    def link_event(self, incident_id: int, event_id: int) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO incident_events (incident_id, event_id) VALUES (?, ?)",
                (incident_id, event_id),
            )

    def events(self, incident_id: int) -> list[Event]:
        """The journal events of the incident, oldest first (those the journal pruned are gone)."""
        with self._lock:
            ids = [
                r[0]
                for r in self._query(
                    "SELECT event_id FROM incident_events WHERE incident_id = ? ORDER BY event_id",
                    (incident_id,),
                )
            ]
            if not ids:
                return []
            events = read_events(self._conn, after_id=ids[0] - 1, limit=100_000)
        wanted = set(ids)
        return [e for e in events if e.id in wanted]

    def impact(self, since: datetime, until: datetime) -> Impact:
        with self._lock:
            return read_impact(self._conn, since=since, until=until)

    # internals ---------------------------------------------------------------

    def _write(self, incident: Incident) -> None:
        body = {
            "releases": incident.releases,
            "alerts": incident.alerts,
            "corrections": {k: to_ms(v) for k, v in incident.corrections.items()},
            "root_cause": incident.root_cause,
            "whys": incident.whys,
            "actions": [a.to_json() for a in incident.actions],
            "public_title": incident.public_title,
            "impact": incident.impact,
        }
        resolved = to_ms(incident.resolved_at) if incident.resolved_at else None
        self._conn.execute(
            "UPDATE incidents SET title = ?, severity = ?, status = ?, resolved_at_ms = ?, body = ?"
            " WHERE id = ?",
            (
                incident.title,
                incident.severity,
                incident.status.value,
                resolved,
                json.dumps(body),
                incident.id,
            ),
        )

    def _insert_update(
        self,
        incident_id: int,
        when: datetime,
        kind: str,
        author: str,
        text: str,
        status: Status | None,
        public_text: str | None,
    ) -> int:
        cursor = self._conn.execute(
            "INSERT INTO incident_updates (incident_id, at_ms, kind, author, text, status, public_text)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (incident_id, to_ms(when), kind, author, text, status.value if status else None, public_text),
        )
        return int(cursor.lastrowid or 0)

    def _select(self, where: str, params: tuple[Any, ...]) -> list[Incident]:
        with self._lock:
            rows = self._query(
                "SELECT id, title, severity, status, opened_at_ms, opened_by, resolved_at_ms, body"
                f" FROM incidents {where}",
                params,
            )
        return [_incident(r) for r in rows]

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []  # a data dir whose guard never made an incident
            raise


def _incident(row: tuple[Any, ...]) -> Incident:
    body = json.loads(row[7] or "{}")
    return Incident(
        id=row[0],
        title=row[1],
        severity=row[2],
        status=Status(row[3]),
        opened_at=from_ms(row[4]),
        opened_by=row[5],
        resolved_at=from_ms(row[6]) if row[6] is not None else None,
        releases=list(body.get("releases", [])),
        alerts=list(body.get("alerts", [])),
        corrections={k: from_ms(v) for k, v in body.get("corrections", {}).items()},
        root_cause=body.get("root_cause", ""),
        whys=list(body.get("whys", [])),
        actions=[Action(**a) for a in body.get("actions", [])],
        public_title=body.get("public_title", ""),
        impact=body.get("impact"),
    )


def to_ms(at: datetime) -> int:
    return round(utc(at).timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
