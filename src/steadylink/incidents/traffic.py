"""What users got at the front door, second by second, kept for incident impact and charts.

The guard reads HAProxy's per-slot counters once a second (``TrafficSampler``
turns the cumulative counters into per-second deltas) and keeps one row per
second that had traffic in ``ops.db`` (``traffic_seconds``) for
``incidents.traffic_retention_days``. ``failures`` counts the 5xx responses
users received; a GET that HAProxy retried on another slot is not one.
The first failures after a quiet minute are said once in the journal
(``traffic.errors``: "first 5xx seen").
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from steadylink.clock import utc

QUIET_SECONDS = 60

# The same table the watch part keeps (watch/samples.py, its front-door signal): whichever
# part runs first makes it, both write a second at most once (INSERT OR IGNORE), so the two
# never fight over a row. Once both are merged, one sampler can go.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS traffic_seconds (
    at_s INTEGER PRIMARY KEY, requests INTEGER NOT NULL, failures INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Totals:
    """Cumulative front-door counters at one moment."""

    requests: int
    failures: int


@dataclass(frozen=True)
class Second:
    at_s: int
    requests: int
    failures: int


def ensure_traffic_table(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)


class TrafficSampler:
    """Deltas between successive ``Totals``; counters that went back (HAProxy restarted) count from zero."""

    def __init__(self) -> None:
        self._last: Totals | None = None
        self._last_failure_s: int | None = None

    def step(self, at: datetime, totals: Totals) -> tuple[Second | None, bool]:
        """The second's figures (None before the second sample) and whether failures just began."""
        last, self._last = self._last, totals
        if last is None:
            return None, False
        if totals.requests < last.requests or totals.failures < last.failures:
            last = Totals(0, 0)
        second = Second(
            int(utc(at).timestamp()),
            totals.requests - last.requests,
            totals.failures - last.failures,
        )
        began = False
        if second.failures > 0:
            began = self._last_failure_s is None or second.at_s - self._last_failure_s > QUIET_SECONDS
            self._last_failure_s = second.at_s
        return second, began


def save_second(conn: sqlite3.Connection, second: Second, *, retention: timedelta) -> None:
    if second.requests <= 0 and second.failures <= 0:
        return
    with conn:
        conn.execute(
            "INSERT OR IGNORE INTO traffic_seconds (at_s, requests, failures) VALUES (?, ?, ?)",
            (second.at_s, second.requests, second.failures),
        )
        if second.at_s % 3600 == 0:
            conn.execute(
                "DELETE FROM traffic_seconds WHERE at_s < ?", (second.at_s - int(retention.total_seconds()),)
            )


def read_traffic(conn: sqlite3.Connection, since: datetime, until: datetime) -> list[Second]:
    try:
        rows = conn.execute(
            "SELECT at_s, requests, failures FROM traffic_seconds WHERE at_s >= ? AND at_s < ? ORDER BY at_s",
            (int(utc(since).timestamp()), int(utc(until).timestamp()) + 1),
        ).fetchall()
    except sqlite3.OperationalError:
        return []  # no table yet: no guard sampled this data folder
    return [Second(*row) for row in rows]
