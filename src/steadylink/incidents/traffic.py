"""What users got at the front door, second by second, for incident impact and charts.

The figures are the watch's: its sampler reads HAProxy's frontend counters
once a second (it also counts HAProxy's own 503 when no release answers) and
writes ``traffic_seconds`` in ``ops.db``, rolled up into ``traffic_minutes``.
The incidents part only reads them; it keeps no sampler of its own, so a
second is never counted twice or by two different measures. The watch keeps
the per-second rows for ``incidents.traffic_retention_days`` (at least 48 h);
older windows are read from the per-minute rows.

Without the watch (a guard whose watch never ran on this data folder) there
are no rows: impact shows no requests, only the probe's bad seconds (none
either, as the probes are the watch's too), and the chart has gaps.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from steadylink.clock import utc

QUIET_SECONDS = 60


@dataclass(frozen=True)
class Second:
    at_s: int
    requests: int
    failures: int


class FirstFailures:
    """Says when 5xx begin after a quiet minute (the ``traffic.errors`` event), once per bout."""

    def __init__(self) -> None:
        self._last_failure_s: int | None = None

    def began(self, second: Second) -> bool:
        if second.failures <= 0:
            return False
        is_new = self._last_failure_s is None or second.at_s - self._last_failure_s > QUIET_SECONDS
        self._last_failure_s = second.at_s
        return is_new


def read_traffic(conn: sqlite3.Connection, since: datetime, until: datetime) -> list[Second]:
    """Seconds with traffic in [since, until]; a minute whose seconds were pruned is one row at its start."""
    lo, hi = int(utc(since).timestamp()), int(utc(until).timestamp()) + 1
    try:
        seconds = [
            Second(*row)
            for row in conn.execute(
                "SELECT at_s, requests, failures FROM traffic_seconds"
                " WHERE at_s >= ? AND at_s < ? AND requests + failures > 0 ORDER BY at_s",
                (lo, hi),
            )
        ]
        first_kept = conn.execute("SELECT min(at_s) FROM traffic_seconds").fetchone()[0]
        older: list[Second] = []
        if first_kept is None or lo < first_kept:
            older = [
                Second(*row)
                for row in conn.execute(
                    "SELECT at_min, requests, failures FROM traffic_minutes"
                    " WHERE at_min >= ? AND at_min < ? AND requests + failures > 0 ORDER BY at_min",
                    (lo // 60 * 60, hi if first_kept is None else min(hi, first_kept // 60 * 60)),
                )
            ]
    except sqlite3.OperationalError:
        return []  # no tables yet: the watch never sampled this data folder
    return older + seconds


def read_seconds_after(conn: sqlite3.Connection, after_s: int, *, limit: int = 3600) -> list[Second]:
    """The watch's newest seconds, oldest first (what the incident tracker looks at each pass)."""
    try:
        rows = conn.execute(
            "SELECT at_s, requests, failures FROM traffic_seconds WHERE at_s > ? ORDER BY at_s LIMIT ?",
            (after_s, limit),
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    return [Second(*row) for row in rows]
