"""/ops/v1/events, /ops/v1/alerts (ack and silence need deployer) and /metrics, in process."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.ops.test_api import key

from steadylink.clock import FakeClock
from steadylink.links.sql_store import SqlStore
from steadylink.notify.dispatch import Dispatcher
from steadylink.ops.api import create_ops_app
from steadylink.release.guard import Guard
from steadylink.settings import Settings
from steadylink.types import Role
from steadylink.watch.journal import Journal
from steadylink.watch.probes import ProbeIdentity, ProbeResult
from steadylink.watch.watcher import Sources, Watcher


@pytest.fixture
def client(sqlite_store: SqlStore, tmp_path: Path) -> Iterator[tuple[TestClient, Watcher, FakeClock]]:
    settings = Settings(data_dir=tmp_path / "data", database=sqlite_store.url)
    guard = Guard(settings)
    guard.state.serving = "20260101000000-f1f1f1f"
    clock = FakeClock()
    journal = Journal.for_data_dir(guard.data_dir, clock=clock)
    watch = Watcher(
        settings, journal=journal, identity=ProbeIdentity("_probe-redirect", "https://p.invalid/", "k"),
        sources=Sources(), dispatcher=Dispatcher([]), clock=clock,
    )  # fmt: skip
    app = create_ops_app(guard, sqlite_store, source_dir=None, journal=journal, watch=watch)
    with TestClient(app) as c:
        yield c, watch, clock
    watch.stop()
    journal.close()


def fail_three_seconds(watch: Watcher, clock: FakeClock) -> None:
    for _ in range(3):
        clock.advance(1)
        watch.record_probe(
            "redirect", int(clock.now().timestamp()), ProbeResult("redirect", False, None, "503")
        )
    watch.evaluate()


def test_events_and_alerts_for_a_viewer_ack_and_silence_for_a_deployer(
    client: tuple[TestClient, Watcher, FakeClock], sqlite_store: SqlStore
) -> None:
    c, watch, clock = client
    fail_three_seconds(watch, clock)
    viewer, deployer = key(sqlite_store, Role.VIEWER), key(sqlite_store, Role.DEPLOYER)
    events = c.get("/ops/v1/events", params={"since": "1h", "kind": "alert"}, headers=viewer).json()
    assert [e["kind"] for e in events] == ["alert.pending", "alert.firing"]
    [alert] = c.get("/ops/v1/alerts", headers=viewer).json()["alerts"]
    assert alert["rule"] == "front_door_down" and alert["state"] == "firing"
    assert c.post(f"/ops/v1/alerts/{alert['alert_id']}/ack", headers=viewer).status_code == 403
    acked = c.post(f"/ops/v1/alerts/{alert['alert_id']}/ack", headers=deployer).json()
    assert acked["acknowledged_by"] == "deployer person"
    body = {"rule": "disk_full", "for": "2h", "reason": "moving the disk"}
    assert c.post("/ops/v1/alerts/silences", json=body, headers=viewer).status_code == 403
    silenced = c.post("/ops/v1/alerts/silences", json=body, headers=deployer).json()
    assert silenced["until"] == clock.now().timestamp() + 7200
    status = c.get("/ops/v1/status", headers=viewer).json()["watch"]
    assert status["firing"][0]["acknowledged_by"] == "deployer person"


def test_bad_input_is_a_4xx_naming_the_field(
    client: tuple[TestClient, Watcher, FakeClock], sqlite_store: SqlStore
) -> None:
    c, _, _ = client
    deployer = key(sqlite_store, Role.DEPLOYER)
    for method, path, kwargs, field in (
        ("get", "/ops/v1/events", {"params": {"since": "last week"}}, "since"),
        ("get", "/ops/v1/events", {"params": {"kind": "Bad Kind"}}, "kind"),
        ("post", "/ops/v1/alerts/nope/ack", {}, "alert"),
        ("post", "/ops/v1/alerts/silences", {"json": {"rule": "nope", "reason": "x"}}, "rule"),
        (
            "post",
            "/ops/v1/alerts/silences",
            {"json": {"rule": "disk_full", "for": "0s", "reason": "x"}},
            "for",
        ),
    ):
        r = getattr(c, method)(path, headers=deployer, **kwargs)
        assert 400 <= r.status_code < 500 and r.json().get("field") == field, (path, r.text)


def test_metrics_need_no_key(client: tuple[TestClient, Watcher, FakeClock]) -> None:
    c, watch, clock = client
    fail_three_seconds(watch, clock)
    text = c.get("/metrics").text
    assert 'steadylink_alert_firing{rule="front_door_down",severity="page"} 1.0' in text
    assert 'steadylink_probe_results_total{probe="redirect",result="failed"} 3.0' in text


def test_alerts_and_events_tell_the_guards_view_while_ops_db_refuses_writes(
    client: tuple[TestClient, Watcher, FakeClock], sqlite_store: SqlStore
) -> None:
    """A full disk under ops.db: `alerts` once said "no alerts" while `status` said FIRING."""
    c, watch, clock = client
    viewer = key(sqlite_store, Role.VIEWER)
    for conn in (watch.alert_store._conn, watch.journal._conn):  # every write refused, as on a full disk
        conn.execute("PRAGMA query_only = ON")
    fail_three_seconds(watch, clock)
    [alert] = c.get("/ops/v1/alerts", headers=viewer).json()["alerts"]
    assert alert["rule"] == "front_door_down" and alert["state"] == "firing"
    events = c.get("/ops/v1/events", params={"since": "1h", "kind": "alert"}, headers=viewer).json()
    assert [(e["kind"], e["id"]) for e in events] == [("alert.pending", 0), ("alert.firing", 0)]
