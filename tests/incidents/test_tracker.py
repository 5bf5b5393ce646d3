"""The tracker: journal events in, incidents with timelines out; the watch's traffic seconds read."""

from __future__ import annotations

from pathlib import Path

from steadylink.clock import FakeClock
from steadylink.incidents.impact import read_impact
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.incidents.tracker import IncidentTracker
from steadylink.notify.dispatch import Dispatcher
from steadylink.settings import Settings
from steadylink.watch.journal import Journal
from steadylink.watch.opsdb import connect_ops_db
from steadylink.watch.probes import ProbeIdentity
from steadylink.watch.traffic import FrontCounters
from steadylink.watch.watcher import Sources, Watcher


def test_a_bad_release_writes_its_own_timeline(
    incidents: Incidents, journal: Journal, clock: FakeClock
) -> None:
    journal.append("deploy.started", "deploy of main started", release="r1", body={"ref": "main"})
    tracker = IncidentTracker(incidents, journal)  # starts at the newest event: history is not replayed
    clock.advance(5)
    journal.append(
        "deploy.step", "gate tests passed", release="r2", body={"step": "tests", "verdict": "passed"}
    )
    clock.advance(5)
    journal.append(
        "canary.weight", "canary at 5 %", release="r2", body={"slot": 2, "weight": 5, "percent": 5}
    )
    clock.advance(3)
    journal.append("traffic.errors", "first 5xx seen", severity="warning")
    clock.advance(2)
    journal.append(
        "release.rolled_back",
        "canary rolled r2 back",
        release="r2",
        body={"automatic": True, "by": "guard", "reason": "5xx", "reached_users": True, "step": "canary"},
    )
    clock.advance(30)
    journal.append(
        "probe.recovered", "redirect probe recovered", body={"probe": "redirect", "down_seconds": 3}
    )
    assert tracker.handle_new_events() == 7  # the five, and its own incident.opened and .updated (skipped)
    assert incidents.store.list_incidents()[0].status.value == "monitoring"  # the rollback mitigated it
    (incident,) = incidents.store.list_incidents()
    assert incident.releases == ["r2"] and incident.opened_by == "guard"
    detail = incidents.detail(incident.id)
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[:3] == ["deploy.step", "canary.weight", "traffic.errors"]
    assert "release.rolled_back" in kinds and "probe.recovered" in kinds and "deploy.started" not in kinds
    assert detail["moments"]["first_bad_signal"] == "2026-01-01T00:00:13Z"
    assert detail["moments"]["detected"] == detail["moments"]["mitigated"] == "2026-01-01T00:00:15Z"
    assert tracker.handle_new_events() == 0
    assert len(incidents.store.list_incidents()) == 1


def test_a_restarted_tracker_neither_misses_nor_repeats(
    tmp_path: Path, incidents: Incidents, journal: Journal, clock: FakeClock
) -> None:
    IncidentTracker(incidents, journal).handle_new_events()
    page = {"alert_id": "a1", "rule": "availability", "severity": "page", "summary": "5xx burn"}
    journal.append("alert.firing", "paged", severity="critical", body=page)  # while no tracker runs
    tracker = IncidentTracker(incidents, journal)
    tracker.handle_new_events()
    tracker.handle_new_events()
    (incident,) = incidents.store.list_incidents()
    assert incident.alerts == ["a1"] and incident.severity == 1


def test_the_watch_s_sampler_alone_makes_the_impact_and_the_first_5xx_event(
    tmp_path: Path, incidents: Incidents, journal: Journal, clock: FakeClock
) -> None:
    # HAProxy's frontend counters (they include its own 503 when no release answers)
    figures = iter(FrontCounters(r, f) for r, f in ((100, 0), (200, 0), (300, 40), (400, 90), (500, 90), (500, 90)))
    watch = Watcher(
        Settings(data_dir=tmp_path), journal=journal, identity=ProbeIdentity("_p", "https://p.invalid/", "k"),
        sources=Sources(front_counters=lambda: next(figures)), dispatcher=Dispatcher([]), clock=clock,
    )  # fmt: skip
    tracker = IncidentTracker(incidents, journal)
    start = clock.now()
    for _ in range(6):
        watch.read_traffic()
        tracker.watch_front_door()
        clock.advance(1)
    assert [e.kind for e in journal.read()] == ["traffic.errors"]  # said once, not every second
    conn = connect_ops_db(journal.path, read_only=True)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'traffic%'").fetchone()[0] == 2
    impact = read_impact(conn, since=start, until=clock.now())
    assert (impact.requests, impact.failed_requests, impact.bad_seconds) == (400, 90, 2)
    assert round(impact.budget_minutes * 60) == 2
    conn.close()
    watch.stop()


def test_without_the_watch_there_are_no_figures_and_nothing_breaks(
    incidents: Incidents, journal: Journal, clock: FakeClock
) -> None:
    tracker = IncidentTracker(incidents, journal)
    tracker.watch_front_door()
    conn = connect_ops_db(journal.path, read_only=True)
    impact = read_impact(conn, since=clock.now(), until=clock.now())
    assert (impact.requests, impact.bad_seconds) == (0, 0)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'traffic%'").fetchone()[0] == 0
    conn.close()


def test_incidents_survive_in_the_store_file(tmp_path: Path, incidents: Incidents, clock: FakeClock) -> None:
    incidents.open(title="<script>alert(1)</script>", by="a")
    store = IncidentStore.for_data_dir(tmp_path, clock=clock, read_only=True)
    assert store.list_incidents()[0].title == "<script>alert(1)</script>"  # kept as typed; escaped when shown
    store.close()


def test_the_leadup_holds_the_events_of_the_trigger_s_own_millisecond(
    incidents: Incidents, journal: Journal, clock: FakeClock
) -> None:
    tracker = IncidentTracker(incidents, journal)
    # the canary's failed step and its rollback, journalled within the same millisecond
    journal.append("deploy.started", "deploy of main started", release="r2", body={"ref": "main"})
    journal.append("deploy.step", "canary failed", release="r2", body={"step": "canary", "verdict": "failed"})
    journal.append(
        "release.rolled_back",
        "canary rolled r2 back",
        release="r2",
        body={"automatic": True, "by": "guard", "reason": "5xx", "reached_users": True, "step": "canary"},
    )
    tracker.handle_new_events()
    (incident,) = incidents.store.list_incidents()
    kinds = [e.kind for e in incidents.store.events(incident.id)]
    assert kinds == ["deploy.started", "deploy.step", "release.rolled_back"]
