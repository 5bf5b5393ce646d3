"""Component states and daily uptime from the probes' minute rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from steadylink.clock import FakeClock
from steadylink.incidents.service import Incidents
from steadylink.incidents.status_page import (
    MinuteRow,
    component_state,
    daily_uptime,
    read_unrolled_seconds,
    status_json,
)
from steadylink.watch.opsdb import connect_ops_db
from steadylink.watch.samples import Samples


def test_component_state_from_the_last_minutes() -> None:
    assert component_state([]) == "unknown"
    assert (
        component_state([MinuteRow("redirect", 60, 60, 60), MinuteRow("redirect", 120, 60, 60)])
        == "operational"
    )
    assert (
        component_state([MinuteRow("redirect", 60, 60, 60), MinuteRow("redirect", 120, 60, 55)]) == "degraded"
    )
    assert component_state([MinuteRow("redirect", 60, 60, 60), MinuteRow("redirect", 120, 60, 0)]) == "outage"


def test_daily_uptime_has_ninety_days_and_none_without_data() -> None:
    day = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp())
    days = daily_uptime([MinuteRow("ui", day, 6, 5), MinuteRow("ui", day + 60, 6, 6)], today=date(2026, 3, 2))
    assert len(days) == 90 and days[-1] == {"date": "2026-03-02", "uptime": None}
    assert days[-2] == {"date": "2026-03-01", "uptime": round(11 / 12, 5)}


def test_status_from_probe_rows(tmp_path: Path, incidents: Incidents, clock: FakeClock) -> None:
    conn = connect_ops_db(tmp_path / "ops.db")
    conn.execute(
        "CREATE TABLE probe_minutes (probe TEXT, at_min INTEGER, total INTEGER, ok INTEGER, p99_ms REAL)"
    )
    now = int(clock.now().timestamp())
    conn.execute("INSERT INTO probe_minutes VALUES ('redirect', ?, 60, 0, 5.0)", (now - 60,))
    conn.execute("INSERT INTO probe_minutes VALUES ('create', ?, 6, 6, 5.0)", (now - 60,))
    for minute in (0, 60, 120):  # ten days ago: summed by day in SQL
        conn.execute("INSERT INTO probe_minutes VALUES ('ui', ?, 6, ?, 5.0)", (now - 10 * 86400 + minute, 3))
    body = status_json(conn, incidents.store, now=clock.now(), title="short.example")
    states = {c["name"]: c["state"] for c in body["components"]}
    assert states == {"Redirects": "outage", "Link creation": "operational", "Web UI": "unknown"}
    assert body["overall"] == "Outage" and body["open_incident"] is None
    ui_days = body["components"][2]["days"]
    assert ui_days[-11] == {"date": (clock.now().date() - timedelta(days=10)).isoformat(), "uptime": 0.5}
    incidents.open(title="internal words", by="a")
    body = status_json(conn, incidents.store, now=clock.now(), title="short.example")
    assert body["overall"] == "Service disruption" and "internal" not in str(body)


def test_a_fresh_guard_s_probes_show_before_their_first_minute_is_rolled_up(
    tmp_path: Path, incidents: Incidents, clock: FakeClock
) -> None:
    samples = Samples(tmp_path / "ops.db")  # the watch's own writer of probe results
    start = int(clock.now().timestamp()) // 60 * 60
    for s in range(90):  # a minute and a half of passing probes, none failed
        for probe in ("redirect", "create", "ui"):
            samples.record_probe(probe, start + s, ok=True, latency_ms=5.0)
    clock.advance(90)
    conn = connect_ops_db(tmp_path / "ops.db", read_only=True)
    body = status_json(conn, incidents.store, now=clock.now(), title="t")
    assert body["overall"] == "All systems operational"  # not "No measurements yet" for a minute
    assert body["components"][0]["days"][-1]["uptime"] == 1.0
    samples.roll_up(start + 90)  # the first minute rolled up: counted once, not twice
    samples.record_probe("redirect", start + 90, ok=False, latency_ms=None)
    rows = read_unrolled_seconds(conn, clock.now() - timedelta(minutes=3))
    assert {(r.probe, r.at_min, r.total) for r in rows if r.probe == "redirect"} == {
        ("redirect", start + 60, 31)
    }
    assert [
        c["state"] for c in status_json(conn, incidents.store, now=clock.now(), title="t")["components"]
    ] == ["degraded", "operational", "operational"]
    conn.close()
    samples.close()
