"""The visit compactor on a real store: it follows a process and folds what is left."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.links.compactor import SWEEP_SECONDS, Compactor
from steadylink.links.files import ORPHAN_AGE, FileStore
from steadylink.links.model import Link, LinkKind, VisitRow
from steadylink.links.spool import VisitSpool, visit_line_tail
from steadylink.links.sql_store import SqlStore


@pytest.fixture
def spool(tmp_path: Path) -> VisitSpool:
    return VisitSpool(tmp_path / "visits")


def _visits(store: SqlStore, spool: VisitSpool, clock: FakeClock, n: int) -> None:
    now = clock.now()
    if store.get_link("c") is None:
        store.insert_link(Link("c", LinkKind.URL, "https://example.com/", None, now, now))
    spool.write(("c" + visit_line_tail(now.date().isoformat(), "", "curl", False)) * n)


def test_it_stops_when_the_followed_process_is_gone_and_folds_what_is_left(
    store: SqlStore, spool: VisitSpool, clock: FakeClock
) -> None:
    _visits(store, spool, clock, 7)
    followed = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    compactor = Compactor(store, spool, every=0.01, follow_pid=followed.pid, clock=clock)
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


def test_a_backlog_is_folded_batch_after_batch_without_waiting_between_them(
    store: SqlStore, spool: VisitSpool, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    compactor = Compactor(store, spool, every=3600, clock=clock)
    runner = threading.Thread(target=compactor.run)
    monkeypatch.setattr("steadylink.links.spool._FOLD_BYTES", 1)  # one file per transaction
    for _ in range(3):
        _visits(store, spool, clock, 2)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while spool.waiting() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert spool.waiting() == []  # not one batch an hour
        assert store.link_stats("c").total == 6
    finally:
        compactor.stop()
        runner.join(timeout=10)


def test_stop_folds_everything_waiting_once_more(
    store: SqlStore, spool: VisitSpool, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("steadylink.links.spool._FOLD_BYTES", 1)  # one file per transaction
    for _ in range(3):
        _visits(store, spool, clock, 3)
    compactor = Compactor(store, spool, every=3600, clock=clock)
    compactor.stop()
    assert compactor.run() == 9
    assert store.link_stats("c").total == 9 and spool.waiting() == []


def test_stop_folds_everything_waiting_behind_a_file_folded_before_a_crash(
    store: SqlStore, spool: VisitSpool, clock: FakeClock
) -> None:
    _visits(store, spool, clock, 2)
    crashed = spool.waiting()[0]
    store.fold_visits([crashed.name], [], at=clock.now())  # its compactor died before deleting it
    _visits(store, spool, clock, 3)
    compactor = Compactor(store, spool, every=3600, clock=clock)  # as `compact --once`
    compactor.stop()
    assert compactor.run() == 3  # the first pass only deletes the folded file: 0 visits
    assert store.link_stats("c").total == 3 and spool.waiting() == []


def test_a_failing_store_is_reported_and_retried_and_loses_nothing(
    store: SqlStore, spool: VisitSpool, clock: FakeClock
) -> None:
    warnings: list[str] = []

    class Flaky:
        calls = 0

        def __getattr__(self, name: str) -> object:
            return getattr(store, name)

        def fold_visits(
            self, names: list[str], visits: list[VisitRow], *, at: datetime, forget: list[str]
        ) -> set[str]:
            self.calls += 1
            if self.calls == 1:
                raise OSError("database is locked")
            return store.fold_visits(names, visits, at=at, forget=forget)

    _visits(store, spool, clock, 2)
    compactor = Compactor(Flaky(), spool, every=3600, warn=warnings.append, clock=clock)  # type: ignore[arg-type]
    compactor.stop()
    compactor.run()  # the last pass fails ...
    assert warnings == ["visit compaction failed: OSError: database is locked"]
    assert compactor.last_error == warnings[0]
    assert len(spool.waiting()) == 1  # ... the file waits ...
    assert compactor.run() == 2  # ... and the next pass folds it all
    assert compactor.last_error is None
    assert store.link_stats("c").total == 2


def test_it_sweeps_orphaned_upload_files_at_start_and_hourly(
    sqlite_store: SqlStore, spool: VisitSpool, tmp_path: Path
) -> None:
    clock = FakeClock()
    files = FileStore(tmp_path / "files", max_bytes=1000)
    orphan = files.path_of(files.save_bytes(b"a failed create's upload", name="a.txt").sha256)
    clock.advance(ORPHAN_AGE + 1)  # the sweep judges age by the clock's wall time
    os.utime(orphan, (clock.now().timestamp() - ORPHAN_AGE - 1,) * 2)
    compactor = Compactor(sqlite_store, spool, every=1.0, clock=clock, files=files)
    compactor._pass()
    assert compactor.swept == 1 and not orphan.exists()
    again = files.path_of(files.save_bytes(b"another", name="b.txt").sha256)
    os.utime(again, (clock.now().timestamp() - ORPHAN_AGE - 1,) * 2)
    compactor._pass()
    assert again.exists()  # not before the hour is up
    clock.advance(SWEEP_SECONDS)
    compactor._pass()
    assert not again.exists()
