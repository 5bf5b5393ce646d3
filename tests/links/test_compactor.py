"""The visit compactor on a real store: it follows a process and folds what is left."""

from __future__ import annotations

import subprocess
import sys
import threading

from steadylink.clock import FakeClock
from steadylink.links.compactor import Compactor
from steadylink.links.model import Click, Link, LinkKind
from steadylink.links.sql_store import SqlStore


def _visits(store: SqlStore, clock: FakeClock, n: int) -> None:
    now = clock.now()
    if store.get_link("c") is None:
        store.insert_link(Link("c", LinkKind.URL, "https://example.com/", None, now, now))
    store.add_clicks([Click("c", now.date().isoformat(), "", "curl", False)] * n)


def test_it_stops_when_the_followed_process_is_gone_and_folds_what_is_left(
    store: SqlStore, clock: FakeClock
) -> None:
    _visits(store, clock, 7)
    followed = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    compactor = Compactor(store, every=0.01, follow_pid=followed.pid)
    runner = threading.Thread(target=compactor.run)
    runner.start()
    try:
        assert followed.stdin is not None
        followed.stdin.close()  # the followed process ends
        followed.wait(timeout=10)
        runner.join(timeout=10)
        assert not runner.is_alive()
    finally:
        compactor.stop()
        runner.join(timeout=10)
    assert compactor.folded == 7
    assert store.link_stats("c").total == 7


def test_stop_folds_once_more(store: SqlStore, clock: FakeClock) -> None:
    _visits(store, clock, 3)
    compactor = Compactor(store, every=3600)
    compactor.stop()
    assert compactor.run() == 3
    assert store.link_stats("c").total == 3


def test_a_failing_store_is_reported_and_retried(store: SqlStore, clock: FakeClock) -> None:
    warnings: list[str] = []

    class Flaky:
        calls = 0

        def compact_visits(self) -> int:
            self.calls += 1
            if self.calls == 1:
                raise OSError("database is locked")
            return store.compact_visits()

    _visits(store, clock, 2)
    compactor = Compactor(Flaky(), every=3600, warn=warnings.append)  # type: ignore[arg-type]
    compactor.stop()
    compactor.run()  # the last pass fails ...
    assert warnings == ["visit compaction failed: OSError: database is locked"]
    assert compactor.run() == 2  # ... and the next one folds it all
