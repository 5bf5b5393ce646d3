"""Probe results and front-door traffic in ``ops.db``, per second and per minute.

``probe_seconds`` keeps every probe result for 48 hours; ``probe_minutes``
rolls each finished minute up (count, good, p99 latency) and keeps it for 400
days, for the yearly budget and the status page. ``traffic_seconds`` and
``traffic_minutes`` do the same for the requests HAProxy counted and those
that failed (the request-based signal). This is the only writer of the
front door's figures; the incidents part reads the probe and traffic tables
for its status page, impact and report charts (their shape is a contract: do
not rename), which is why per-second traffic is kept as long as
``incidents.traffic_retention_days`` says when that is longer than 48 h.

Writing never raises: with a full disk the rows are lost (said once on
stderr) and the guard goes on probing; the alert rules work from memory
(``Series``), not from these tables.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from steadylink.watch.opsdb import connect_ops_db
from steadylink.watch.series import Series

SECONDS_KEPT = 48 * 3600
MINUTES_KEPT_DAYS = 400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS probe_seconds (
    probe TEXT NOT NULL, at_s INTEGER NOT NULL, ok INTEGER NOT NULL, latency_ms REAL,
    PRIMARY KEY (probe, at_s)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS probe_minutes (
    probe TEXT NOT NULL, at_min INTEGER NOT NULL, total INTEGER NOT NULL, ok INTEGER NOT NULL,
    p99_ms REAL, PRIMARY KEY (probe, at_min)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS traffic_seconds (
    at_s INTEGER PRIMARY KEY, requests INTEGER NOT NULL, failures INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS traffic_minutes (
    at_min INTEGER PRIMARY KEY, requests INTEGER NOT NULL, failures INTEGER NOT NULL
);
"""


def p99(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class Samples:
    """The probe and traffic tables of one ``ops.db``; safe to share between threads."""

    def __init__(self, path: Path, *, traffic_seconds_kept: int = SECONDS_KEPT) -> None:
        self.path = path
        self.traffic_seconds_kept = max(SECONDS_KEPT, traffic_seconds_kept)
        self._lock = threading.Lock()
        self._conn = connect_ops_db(path)
        self._conn.executescript(_SCHEMA)
        self._is_failing = False
        self._rolled_up_to: int | None = None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record_probe(self, probe: str, at_s: int, *, ok: bool, latency_ms: float | None) -> None:
        self._write(
            "INSERT OR REPLACE INTO probe_seconds (probe, at_s, ok, latency_ms) VALUES (?, ?, ?, ?)",
            (probe, at_s, int(ok), latency_ms),
        )

    def record_traffic(self, at_s: int, *, requests: int, failures: int) -> None:
        """One row per second; a second already written (a guard restarted within it) keeps its row."""
        self._write(
            "INSERT OR IGNORE INTO traffic_seconds (at_s, requests, failures) VALUES (?, ?, ?)",
            (at_s, requests, failures),
        )

    def roll_up(self, now_s: int) -> None:
        """Write the per-minute rows of every finished minute not yet written, and prune."""
        this_minute = now_s // 60 * 60
        start = self._rolled_up_to if self._rolled_up_to is not None else this_minute - 3600
        if start >= this_minute:
            return
        try:
            with self._lock, self._conn:
                rows = self._conn.execute(
                    "SELECT probe, at_s / 60 * 60, ok, latency_ms FROM probe_seconds"
                    " WHERE at_s >= ? AND at_s < ?",
                    (start, this_minute),
                ).fetchall()
                minutes: dict[tuple[str, int], list[tuple[int, float | None]]] = {}
                for probe, at_min, ok, latency in rows:
                    minutes.setdefault((probe, at_min), []).append((ok, latency))
                self._conn.executemany(
                    "INSERT OR REPLACE INTO probe_minutes (probe, at_min, total, ok, p99_ms)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (probe, at_min, len(cells), sum(ok for ok, _ in cells),
                         p99(lat for _, lat in cells if lat is not None))
                        for (probe, at_min), cells in minutes.items()
                    ],
                )  # fmt: skip
                self._conn.execute(
                    "INSERT OR REPLACE INTO traffic_minutes (at_min, requests, failures)"
                    " SELECT at_s / 60 * 60, sum(requests), sum(failures) FROM traffic_seconds"
                    " WHERE at_s >= ? AND at_s < ? GROUP BY at_s / 60",
                    (start, this_minute),
                )
                if this_minute % 3600 == 0 or self._rolled_up_to is None:
                    self._prune(now_s)
            self._rolled_up_to = this_minute
        except sqlite3.Error as exc:
            self._say_failing(exc)

    def _prune(self, now_s: int) -> None:
        oldest_second = now_s - SECONDS_KEPT
        oldest_minute = now_s - MINUTES_KEPT_DAYS * 86_400
        self._conn.execute("DELETE FROM probe_seconds WHERE at_s < ?", (oldest_second,))
        self._conn.execute("DELETE FROM traffic_seconds WHERE at_s < ?", (now_s - self.traffic_seconds_kept,))
        self._conn.execute("DELETE FROM probe_minutes WHERE at_min < ?", (oldest_minute,))
        self._conn.execute("DELETE FROM traffic_minutes WHERE at_min < ?", (oldest_minute,))

    # reading -------------------------------------------------------------------

    def bad_probe_seconds(self, probe: str, since_s: int, until_s: int) -> int:
        """Failed results of ``probe`` in [since, until), from minutes, then seconds for the rest."""
        with self._lock:
            row = self._conn.execute(
                "SELECT coalesce(sum(total - ok), 0), coalesce(max(at_min), ?) FROM probe_minutes"
                " WHERE probe = ? AND at_min >= ? AND at_min < ?",
                (since_s - 60, probe, since_s, until_s),
            ).fetchone()
            after = max(int(row[1]) + 60, since_s)
            rest = self._conn.execute(
                "SELECT count(*) FROM probe_seconds WHERE probe = ? AND at_s >= ? AND at_s < ? AND ok = 0",
                (probe, after, until_s),
            ).fetchone()
        return int(row[0]) + int(rest[0])

    def traffic(self, since_s: int, until_s: int) -> tuple[int, int]:
        """(requests, failures) in [since, until), whole minutes plus the seconds after them."""
        with self._lock:
            row = self._conn.execute(
                "SELECT coalesce(sum(requests), 0), coalesce(sum(failures), 0), coalesce(max(at_min), ?)"
                " FROM traffic_minutes WHERE at_min >= ? AND at_min < ?",
                (since_s - 60, since_s, until_s),
            ).fetchone()
            rest = self._conn.execute(
                "SELECT coalesce(sum(requests), 0), coalesce(sum(failures), 0) FROM traffic_seconds"
                " WHERE at_s >= ? AND at_s < ?",
                (max(int(row[2]) + 60, since_s), until_s),
            ).fetchone()
        return int(row[0]) + int(rest[0]), int(row[1]) + int(rest[1])

    def load_probe(self, probe: str, series: Series, now_s: int) -> None:
        """Fill ``series`` with what was recorded before a restart."""
        with self._lock:
            cut = _cut(series, now_s)
            minutes = self._conn.execute(
                "SELECT at_min, total, ok FROM probe_minutes WHERE probe = ? AND at_min >= ? AND at_min < ?",
                (probe, now_s - series.minutes_kept * 60, cut),
            ).fetchall()
            seconds = self._conn.execute(
                "SELECT at_s, ok FROM probe_seconds WHERE probe = ? AND at_s >= ?", (probe, cut)
            ).fetchall()
        for at_min, total, ok in minutes:
            series.add_minute(at_min, good=ok, bad=total - ok, seconds=total)
        for at_s, ok in seconds:
            series.add(at_s, good=ok, bad=1 - ok)

    def load_traffic(self, series: Series, now_s: int) -> None:
        with self._lock:
            cut = _cut(series, now_s)
            minutes = self._conn.execute(
                "SELECT at_min, requests, failures FROM traffic_minutes WHERE at_min >= ? AND at_min < ?",
                (now_s - series.minutes_kept * 60, cut),
            ).fetchall()
            seconds = self._conn.execute(
                "SELECT at_s, requests, failures FROM traffic_seconds WHERE at_s >= ?", (cut,)
            ).fetchall()
        for at_min, requests, failures in minutes:
            series.add_minute(at_min, good=requests - failures, bad=failures, seconds=60)
        for at_s, requests, failures in seconds:
            series.add(at_s, good=requests - failures, bad=failures)

    # internals -----------------------------------------------------------------

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            with self._lock, self._conn:
                self._conn.execute(sql, params)
            if self._is_failing:
                self._is_failing = False
                print("watch: writing probe results to ops.db again", file=sys.stderr)
        except sqlite3.Error as exc:
            self._say_failing(exc)

    def _say_failing(self, exc: sqlite3.Error) -> None:
        if not self._is_failing:
            self._is_failing = True
            print(
                f"watch: cannot write probe results to {self.path} ({exc}); probing goes on",
                file=sys.stderr,
            )


def _cut(series: Series, now_s: int) -> int:
    """Minutes before this come from the minute table, seconds from it on (never both)."""
    return (now_s - series.seconds_kept) // 60 * 60 + 60
