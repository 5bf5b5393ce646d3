"""The public status page, as data: components, 90 days of uptime, incidents' public side.

Built from the probes' rows in ``ops.db`` (``probe_minutes``, written by the
watch part, plus the ``probe_seconds`` of the minutes it has not rolled up
yet, so the page shows what the probes see now, not a minute late, and a
fresh guard is not "No measurements yet" while its probes pass) and the
incident store. Nothing internal goes on it: no release
ids, no error text, no note a person did not mark public — an incident shows
its public title (or "Service disruption"), its status, when it began and
ended, and its public updates. ``status_json`` is what ``/status.json``
answers and what the HTML page renders.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from steadylink.clock import utc
from steadylink.incidents.model import Incident, Update, iso
from steadylink.incidents.store import IncidentStore

COMPONENTS = (("Redirects", "redirect"), ("Link creation", "create"), ("Web UI", "ui"))
DAYS = 90
RECENT_MINUTES = 3
DEFAULT_PUBLIC_TITLE = "Service disruption"


@dataclass(frozen=True)
class MinuteRow:
    probe: str
    at_min: int
    total: int
    ok: int


def component_state(recent: list[MinuteRow]) -> str:
    """``operational``, ``degraded``, ``outage`` from the last minutes' probes, or ``unknown``."""
    total = sum(r.total for r in recent)
    ok = sum(r.ok for r in recent)
    if total == 0:
        return "unknown"
    latest = max(recent, key=lambda r: r.at_min)
    if latest.total and latest.ok == 0:
        return "outage"
    return "operational" if ok == total else "degraded"


def daily_uptime(rows: list[MinuteRow], *, today: date, days: int = DAYS) -> list[dict[str, Any]]:
    """One entry per day, oldest first: the share of probes that passed, or None without data."""
    per_day: dict[date, list[int]] = {}
    for r in rows:
        day = datetime.fromtimestamp(r.at_min, tz=UTC).date()
        totals = per_day.setdefault(day, [0, 0])
        totals[0] += r.total
        totals[1] += r.ok
    out = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        total, ok = per_day.get(day, [0, 0])
        out.append({"date": day.isoformat(), "uptime": round(ok / total, 5) if total else None})
    return out


def public_incident(incident: Incident, updates: list[Update]) -> dict[str, Any]:
    return {
        "title": incident.public_title or DEFAULT_PUBLIC_TITLE,
        "status": incident.status.value,
        "started_at": iso(incident.opened_at),
        "resolved_at": iso(incident.resolved_at) if incident.resolved_at else None,
        "updates": [
            {"at": iso(u.at), "status": u.status.value if u.status else None, "text": u.public_text}
            for u in updates
            if u.public_text
        ],
    }


def status_json(
    conn: sqlite3.Connection, store: IncidentStore, *, now: datetime, title: str
) -> dict[str, Any]:
    now = utc(now)
    since = now - timedelta(days=DAYS)
    unrolled = read_unrolled_seconds(conn, now - timedelta(minutes=RECENT_MINUTES))
    days = read_minutes(conn, since, per_day=True) + [
        MinuteRow(r.probe, r.at_min // 86_400 * 86_400, r.total, r.ok) for r in unrolled
    ]
    recent = read_minutes(conn, now - timedelta(minutes=RECENT_MINUTES)) + unrolled
    components = []
    for name, probe in COMPONENTS:
        components.append(
            {
                "name": name,
                "state": component_state([r for r in recent if r.probe == probe]),
                "days": daily_uptime([r for r in days if r.probe == probe], today=now.date()),
            }
        )
    incidents = store.list_incidents(since=since)
    open_ones = [public_incident(i, store.updates(i.id)) for i in incidents if i.is_open]
    past = [public_incident(i, store.updates(i.id)) for i in incidents if not i.is_open]
    states = {c["state"] for c in components}
    if open_ones:
        overall = open_ones[0]["title"]
    elif "outage" in states:
        overall = "Outage"
    elif "degraded" in states:
        overall = "Degraded performance"
    elif states == {"unknown"}:
        overall = "No measurements yet"
    else:
        overall = "All systems operational"
    return {
        "title": title,
        "generated_at": iso(now),
        "overall": overall,
        "components": components,
        "open_incident": open_ones[0] if open_ones else None,
        "incidents": open_ones[1:] + past,
    }


def read_minutes(conn: sqlite3.Connection, since: datetime, *, per_day: bool = False) -> list[MinuteRow]:
    """Probe rows since ``since``; ``per_day`` sums them by UTC day in SQL (90 days are ~390k rows)."""
    bucket = "(at_min / 86400) * 86400" if per_day else "at_min"
    try:
        rows = conn.execute(
            f"SELECT probe, {bucket} AS bucket, SUM(total), SUM(ok) FROM probe_minutes"
            " WHERE at_min >= ? GROUP BY probe, bucket",
            (int(since.timestamp()),),
        ).fetchall()
    except sqlite3.OperationalError:
        return []  # the watch part has not written probes (yet)
    return [MinuteRow(str(r[0]), int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows]


def read_unrolled_seconds(conn: sqlite3.Connection, since: datetime) -> list[MinuteRow]:
    """Per-second probe results of the minutes not yet in ``probe_minutes`` (the current one, and
    the one just finished until the watch rolls it up), summed per minute."""
    try:
        rows = conn.execute(
            "SELECT probe, at_s / 60 * 60 AS at_min, count(*), SUM(ok) FROM probe_seconds AS s"
            " WHERE at_s >= ? AND at_s / 60 * 60 > coalesce("
            "  (SELECT max(at_min) FROM probe_minutes AS m WHERE m.probe = s.probe), -1)"
            " GROUP BY probe, at_min",
            (int(since.timestamp()),),
        ).fetchall()
    except sqlite3.OperationalError:
        return []  # the watch part has not written probes (yet)
    return [MinuteRow(str(r[0]), int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows]
