"""Alerts and silences in ``ops.db``, so a guard that restarts carries on with the same alerts.

Other parts (incidents, the status page) and the CLI read alerts with
``list_alerts(ops_db_path, since=...)``: each ``Alert`` has ``alert_id``,
``rule``, ``severity`` (page | ticket), ``state`` (pending | firing |
resolved), ``started_at``, ``resolved_at`` and ``acknowledged_by``
(times in unix seconds).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from steadylink.watch.alerts import Alert, Silence
from steadylink.watch.opsdb import connect_ops_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY, rule TEXT NOT NULL, state TEXT NOT NULL, started_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, started_at);
CREATE TABLE IF NOT EXISTS silences (
    rule TEXT PRIMARY KEY, until REAL NOT NULL, reason TEXT NOT NULL, by TEXT NOT NULL
);
"""


class AlertStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._conn = connect_ops_db(path)
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def save(self, alert: Alert) -> None:
        """Write one alert; a full disk loses the write, never the guard (the book is in memory)."""
        try:
            with self._lock, self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO alerts (alert_id, rule, state, started_at, body)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (alert.alert_id, alert.rule, alert.state, alert.started_at, json.dumps(alert.to_json())),
                )
        except sqlite3.Error:
            pass

    def save_silence(self, silence: Silence) -> None:
        """Like ``save``: a refused write leaves the silence in force until the guard restarts."""
        try:
            with self._lock, self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO silences (rule, until, reason, by) VALUES (?, ?, ?, ?)",
                    (silence.rule, silence.until, silence.reason, silence.by),
                )
        except sqlite3.Error:
            pass

    def open_alerts(self) -> list[Alert]:
        return self._query("SELECT body FROM alerts WHERE state != 'resolved'", ())

    def silences(self) -> list[Silence]:
        with self._lock:
            rows = self._conn.execute("SELECT rule, until, reason, by FROM silences").fetchall()
        return [Silence(*row) for row in rows]

    def recent(self, *, since: float, limit: int = 200) -> list[Alert]:
        return self._query(
            "SELECT body FROM alerts WHERE state != 'resolved' OR started_at >= ?"
            " ORDER BY started_at DESC LIMIT ?",
            (since, limit),
        )

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[Alert]:
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [alert_from_json(json.loads(body)) for (body,) in rows]


def alert_from_json(body: dict[str, Any]) -> Alert:
    body = dict(body)
    body.pop("dedup_key", None)
    return Alert(**body)


def list_alerts(path: Path, *, since: float, limit: int = 200) -> list[Alert]:
    """Alerts for a CLI that reads ``ops.db`` itself (read-only; none when the guard never ran)."""
    if not path.exists():
        return []
    conn = connect_ops_db(path, read_only=True)
    try:
        rows = conn.execute(
            "SELECT body FROM alerts WHERE state != 'resolved' OR started_at >= ?"
            " ORDER BY started_at DESC LIMIT ?",
            (since, limit),
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [alert_from_json(json.loads(body)) for (body,) in rows]
