"""The alert state machine, second by second on a fake clock (no sleeping)."""

import itertools

import pytest
from tests.watch.sim import Sim

from steadylink.errors import NotFound
from steadylink.settings import NotifySettings, Settings, WatchSettings
from steadylink.watch.alert_store import AlertStore
from steadylink.watch.alerts import AlertBook, Timing

ONLY = {"front_door_down"}


def kinds(sim: Sim) -> list[str]:
    return [c.kind for _, c in sim.changes]


def test_one_outage_is_one_alert_with_one_dedup_key_from_pending_to_resolved() -> None:
    sim = Sim()
    sim.run(10, probe_ok=False, only=ONLY)
    sim.run(10, only=ONLY)
    assert kinds(sim) == ["pending", "firing", "resolved"]
    assert len({c.alert.dedup_key for _, c in sim.changes}) == 1


def test_a_rule_with_a_for_time_stays_pending_and_a_short_blip_never_fires() -> None:
    sim = Sim()
    sim.with_readings(disk_used_percent=99.0)
    sim.run(5, only={"disk_full"})
    sim.with_readings(disk_used_percent=10.0)
    sim.run(5, only={"disk_full"})
    assert kinds(sim) == ["pending", "resolved"]
    assert sim.changes[-1][1].alert.fired_at is None  # told nobody


def test_renotified_until_acknowledged_then_quiet() -> None:
    settings = Settings().with_overrides(watch=WatchSettings(renotify_seconds=60))
    sim = Sim(settings=settings)
    sim.run(200, probe_ok=False, only=ONLY)
    reminders = [at for at, c in sim.changes if c.kind == "renotify"]
    assert [b - a for a, b in itertools.pairwise(reminders)] == [60, 60]
    sim.book.acknowledge("front_door_down", by="ana", now=float(sim.now_s))
    sim.run(200, probe_ok=False, only=ONLY)
    assert len([c for _, c in sim.changes if c.kind == "renotify"]) == 3


def test_an_unacknowledged_page_escalates_once_after_the_set_time() -> None:
    settings = Settings().with_overrides(notify=NotifySettings(escalate_after_seconds=120))
    sim = Sim(settings=settings)
    sim.run(3, probe_ok=False, only=ONLY)
    fired = sim.now_s
    sim.run(400, probe_ok=False, only=ONLY)
    assert [at for at, c in sim.changes if c.kind == "escalated"] == [fired + 120]


def test_acknowledging_an_unknown_alert_says_so() -> None:
    book = AlertBook(Timing())
    with pytest.raises(NotFound, match="No open alert 'nope'"):
        book.acknowledge("nope", by="ana", now=0.0)


def test_a_silenced_rule_changes_state_but_tells_nobody() -> None:
    sim = Sim(settings=Settings().with_overrides(watch=WatchSettings(renotify_seconds=60)))
    sim.book.silence(
        sim.rules["front_door_down"], until=sim.now_s + 100.0, reason="planned", by="ana", now=sim.now_s
    )
    sim.run(10, probe_ok=False, only=ONLY)
    assert [c.silenced for _, c in sim.changes] == [True, True]
    sim.run(120, probe_ok=False, only=ONLY)
    reminders = [(at, c.silenced) for at, c in sim.changes if c.kind == "renotify"]
    # the reminder inside the silence is silenced; the one after it goes out
    assert [silenced for _, silenced in reminders] == [True, False]


def test_a_clock_that_jumps_back_never_makes_a_negative_duration() -> None:
    sim = Sim()
    sim.run(10, probe_ok=False, only=ONLY)
    sim.now_s -= 3600  # the clock jumps back an hour
    sim.run(5, probe_ok=False, only=ONLY)
    assert kinds(sim).count("firing") == 1


def test_state_survives_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = AlertStore(tmp_path / "ops.db")
    sim = Sim()
    sim.run(5, probe_ok=False, only=ONLY)
    sim.book.acknowledge("front_door_down", by="ana", now=float(sim.now_s))
    for alert in sim.book.open.values():
        store.save(alert)
    store.close()
    restarted = AlertBook(Timing(), AlertStore(tmp_path / "ops.db").open_alerts())
    [alert] = restarted.open.values()
    assert alert.state == "firing" and alert.acknowledged_by == "ana"
    assert alert.alert_id == next(iter(sim.book.open.values())).alert_id
