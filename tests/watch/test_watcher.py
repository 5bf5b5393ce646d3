"""The loop's wiring without processes: results in, journal events and notices out (fake clock)."""

from __future__ import annotations

import time
from pathlib import Path

from steadylink.clock import FakeClock
from steadylink.notify.base import Channel, Notice
from steadylink.notify.dispatch import Dispatcher
from steadylink.settings import Settings
from steadylink.watch.journal import Journal
from steadylink.watch.metrics import render_metrics
from steadylink.watch.probes import ProbeIdentity, ProbeResult
from steadylink.watch.watcher import Sources, Watcher

IDENTITY = ProbeIdentity("_probe-redirect", "https://probe.steadylink.invalid/", "slk__probe_x")


class Inbox(Channel):
    kind = "inbox"

    def __init__(self) -> None:
        self.name = "inbox"
        self.notices: list[Notice] = []

    def wants(self, notice: Notice) -> bool:
        return True

    def deliver(self, notice: Notice) -> None:
        self.notices.append(notice)


def make(tmp_path: Path) -> tuple[Watcher, FakeClock, Inbox, Journal]:
    clock = FakeClock()
    journal = Journal.for_data_dir(tmp_path, clock=clock)
    inbox = Inbox()
    settings = Settings().with_overrides(data_dir=tmp_path)
    watch = Watcher(
        settings, journal=journal, identity=IDENTITY, sources=Sources(serving=lambda: "r1"),
        dispatcher=Dispatcher([inbox], record=journal.append), clock=clock,
    )  # fmt: skip
    watch.dispatcher.start()
    return watch, clock, inbox, journal


def second(watch: Watcher, clock: FakeClock, ok: bool) -> None:
    clock.advance(1)
    at_s = int(clock.now().timestamp())
    watch.record_probe(
        "redirect", at_s, ProbeResult("redirect", ok, 3.0 if ok else None, None if ok else "503")
    )
    watch.evaluate()


def wait_for(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_three_failed_seconds_make_a_page_and_the_journal_tells_it(tmp_path: Path) -> None:
    watch, clock, inbox, journal = make(tmp_path)
    try:
        for _ in range(5):
            second(watch, clock, True)
        for _ in range(3):
            second(watch, clock, False)
        wait_for(lambda: len(inbox.notices) == 1)
        [trigger] = inbox.notices
        assert (trigger.action, trigger.rule, trigger.details["release"]) == (
            "trigger",
            "front_door_down",
            "r1",
        )
        for _ in range(5):
            second(watch, clock, True)
        wait_for(lambda: len(inbox.notices) == 2)
        assert inbox.notices[1].action == "resolve" and inbox.notices[1].dedup_key == trigger.dedup_key
        kinds = [e.kind for e in journal.read()]
        for kind in ("probe.failed", "alert.pending", "alert.firing", "probe.recovered", "alert.resolved"):
            assert kind in kinds
        wait_for(lambda: [e.kind for e in journal.read(kinds=["notify"])] == ["notify.sent"] * 2)
        assert watch.status()["budget"]["time_based"][0]["spent_minutes"] == 0.05  # 3 bad seconds
    finally:
        watch.stop()


def test_acknowledging_tells_the_channels_and_a_restart_keeps_the_alert(tmp_path: Path) -> None:
    watch, clock, inbox, _ = make(tmp_path)
    for _ in range(3):
        second(watch, clock, False)
    alert = watch.acknowledge("front_door_down", by="ana")
    wait_for(lambda: len(inbox.notices) == 2)
    assert [n.action for n in inbox.notices] == ["trigger", "acknowledge"]
    watch.stop()
    again, _, _, _ = make(tmp_path)
    try:
        [kept] = again.book.open.values()
        assert kept.alert_id == alert.alert_id and kept.acknowledged_by == "ana"
    finally:
        again.stop()


def create_run(watch: Watcher, clock: FakeClock, name: str, ok: bool) -> None:
    """Ten seconds of good liveness results, then one create transaction's (run every 10 s)."""
    for _ in range(10):
        second(watch, clock, True)
    at_s = int(clock.now().timestamp())
    result = ProbeResult(name, ok, 40.0 if ok else None, None if ok else "POST /api/v1/links answered 500")
    watch.record_probe(name, at_s, result)
    watch.evaluate()


def test_the_create_transaction_failing_twice_pages_and_a_canary_sockets_failures_do_not(tmp_path: Path) -> None:
    watch, clock, inbox, journal = make(tmp_path)
    try:
        for _ in range(4):
            create_run(watch, clock, "create@canary", False)
        create_run(watch, clock, "create", True)
        create_run(watch, clock, "create", False)
        assert watch.book.open == {}
        create_run(watch, clock, "create", False)
        failed_at = clock.now().timestamp()
        wait_for(lambda: len(inbox.notices) == 1)
        [trigger] = inbox.notices
        assert (trigger.action, trigger.rule) == ("trigger", "create_probe_failing")
        assert "failed 2 runs in a row" in trigger.summary and "answered 500" in trigger.summary
        assert watch.book.open["create_probe_failing"].fired_at == failed_at
        metrics = render_metrics(watch).decode()
        assert 'steadylink_probe_failed_runs{probe="create"} 2.0' in metrics
        assert 'steadylink_probe_failed_runs{probe="create@canary"} 4.0' in metrics
        create_run(watch, clock, "create", True)
        wait_for(lambda: len(inbox.notices) == 2)
        assert inbox.notices[1].action == "resolve" and inbox.notices[1].dedup_key == trigger.dedup_key
        [resolved] = journal.read(kinds=["alert.resolved"])
        assert resolved.at.timestamp() == failed_at + 10
    finally:
        watch.stop()


def test_status_shows_a_twenty_minute_yearly_budget(tmp_path: Path) -> None:
    watch, _, _, _ = make(tmp_path)
    try:
        status = watch.status()
        assert status["objective"]["budget_minutes_per_year"] == 20.0
        assert status["budget"]["time_based"][0]["allowed_minutes"] == 20.0
    finally:
        watch.stop()


def test_a_guard_that_was_paused_does_not_page_for_its_own_silent_probes(tmp_path: Path) -> None:
    """SIGSTOP on the guard for 30 s once paged "probes are not running" the moment it resumed."""
    watch, clock, inbox, journal = make(tmp_path)
    try:
        for _ in range(5):
            second(watch, clock, True)
        clock.advance(30)  # the whole guard stopped: no probe ran, no rule ran
        assert watch.evaluate() == []
        [paused] = journal.read(kinds=["watch.paused"])
        assert "did not run for 30s" in paused.message
        for _ in range(3):
            second(watch, clock, True)  # the probes report again at once: nothing to say
        assert not [e for e in journal.read(kinds=["alert"]) if "probes_stale" in e.message]
        # probes that stay silent after the resume are still a page, counted from the resume
        stale = watch.settings.watch.probes_stale_seconds
        for _ in range(int(stale) + 1):
            clock.advance(1)
            watch.evaluate()
        firing = [e for e in journal.read(kinds=["alert.firing"]) if "probes_stale" in e.message]
        assert len(firing) == 1
        wait_for(lambda: any(n.rule == "probes_stale" for n in inbox.notices))
    finally:
        watch.stop()
