"""How much an incident hurt: failed requests, their share, bad seconds and the error budget.

The window runs from the first bad signal to the mitigation (or the
resolution, or now). A *bad second* is one in which users got at least one
5xx at the front door, or the liveness probe (``redirect``) failed; the error
budget counts bad seconds as downtime: the contract allows 20 minutes a year.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steadylink.clock import utc
from steadylink.incidents.traffic import Second, read_traffic

YEARLY_BUDGET_MINUTES = 20.0


@dataclass(frozen=True)
class Impact:
    since: datetime
    until: datetime
    requests: int
    failed_requests: int
    bad_seconds: int

    @property
    def failed_share(self) -> float:
        return self.failed_requests / self.requests if self.requests else 0.0

    @property
    def budget_minutes(self) -> float:
        return self.bad_seconds / 60

    @property
    def budget_share(self) -> float:
        return self.budget_minutes / YEARLY_BUDGET_MINUTES

    @property
    def duration_seconds(self) -> float:
        return (self.until - self.since).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat().replace("+00:00", "Z"),
            "until": self.until.isoformat().replace("+00:00", "Z"),
            "duration_seconds": round(self.duration_seconds, 1),
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "failed_share": round(self.failed_share, 6),
            "bad_seconds": self.bad_seconds,
            "budget_minutes": round(self.budget_minutes, 2),
            "budget_share_of_year": round(self.budget_share, 4),
        }


def impact_from_json(body: dict[str, Any]) -> Impact:
    """An impact kept in an incident record (``Impact.to_json``) read back."""
    return Impact(
        since=datetime.fromisoformat(str(body["since"]).replace("Z", "+00:00")),
        until=datetime.fromisoformat(str(body["until"]).replace("Z", "+00:00")),
        requests=int(body["requests"]),
        failed_requests=int(body["failed_requests"]),
        bad_seconds=int(body["bad_seconds"]),
    )


def compute_impact(
    seconds: list[Second], failed_probe_seconds: set[int], *, since: datetime, until: datetime
) -> Impact:
    lo, hi = int(utc(since).timestamp()), int(utc(until).timestamp())
    inside = [s for s in seconds if lo <= s.at_s <= hi]
    bad = {s.at_s for s in inside if s.failures > 0} | {s for s in failed_probe_seconds if lo <= s <= hi}
    return Impact(
        since=utc(since),
        until=utc(until),
        requests=sum(s.requests for s in inside),
        failed_requests=sum(s.failures for s in inside),
        bad_seconds=len(bad),
    )


def read_impact(conn: sqlite3.Connection, *, since: datetime, until: datetime) -> Impact:
    return compute_impact(
        read_traffic(conn, since, until), failed_probe_seconds(conn, since, until), since=since, until=until
    )


def failed_probe_seconds(conn: sqlite3.Connection, since: datetime, until: datetime) -> set[int]:
    """Seconds the liveness probe failed (the watch part writes ``probe_seconds``)."""
    try:
        rows = conn.execute(
            "SELECT at_s FROM probe_seconds WHERE probe = 'redirect' AND ok = 0 AND at_s >= ? AND at_s <= ?",
            (int(utc(since).timestamp()), int(utc(until).timestamp())),
        ).fetchall()
    except sqlite3.OperationalError:
        return set()  # no probes yet (the watch part is not there, or never ran)
    return {int(r[0]) for r in rows}
