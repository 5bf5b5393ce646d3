"""The event journal: append, read back, filter, prune, and keep going on a full disk."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import InvalidInput
from steadylink.watch.journal import Event, Journal, Severity, read_events
from steadylink.watch.opsdb import connect_ops_db, ops_db_path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal(tmp_path: Path, clock: FakeClock) -> Journal:
    return Journal.for_data_dir(tmp_path, clock=clock)


def test_an_event_reads_back_as_it_was_appended(journal: Journal, clock: FakeClock) -> None:
    clock.advance(0.1234)
    event = journal.append(
        "deploy.step",
        "gate tests passed",
        release="r1",
        severity="warning",
        body={"step": "tests", "seconds": 1.5},
    )
    assert event.id > 0
    (read,) = journal.read()
    assert read == event
    assert read.at == clock.now().replace(microsecond=123000)
    assert read.severity is Severity.WARNING
    assert read.to_json()["at"].endswith(".123Z")


def test_messages_are_one_bounded_line(journal: Journal) -> None:
    event = journal.append("note", "two\nlines  " + "x" * 5000)
    assert "\n" not in event.message
    assert len(event.message) == 1000


@pytest.mark.parametrize("kind", ["", "Deploy", "deploy.", "deploy step", "a..b", "x;DROP"])
def test_a_malformed_kind_is_refused(journal: Journal, kind: str) -> None:
    with pytest.raises(InvalidInput) as err:
        journal.append(kind, "m")
    assert err.value.field == "kind"


def test_an_unknown_severity_is_refused(journal: Journal) -> None:
    with pytest.raises(ValueError):
        journal.append("note", "m", severity="loud")


def test_kinds_match_exactly_or_as_a_prefix(journal: Journal) -> None:
    for kind in ("deploy", "deploy.step", "deploy_x.step", "deployer", "probe.failed"):
        journal.append(kind, kind)
    assert [e.kind for e in journal.read(kinds=["deploy"])] == ["deploy", "deploy.step"]
    assert [e.kind for e in journal.read(kinds=["deploy_x"])] == ["deploy_x.step"]
    assert [e.kind for e in journal.read(kinds=["probe", "deployer"])] == ["deployer", "probe.failed"]


def test_read_filters_by_time_release_and_id(journal: Journal, clock: FakeClock) -> None:
    start = clock.now()
    for i in range(5):
        journal.append("probe.failed", f"n{i}", release="a" if i % 2 else "b")
        clock.advance(60)
    assert [e.message for e in journal.read(since=start + timedelta(minutes=2))] == ["n2", "n3", "n4"]
    assert [e.message for e in journal.read(until=start + timedelta(minutes=2))] == ["n0", "n1"]
    assert [e.message for e in journal.read(release="a")] == ["n1", "n3"]
    first = journal.read(limit=1)[0]
    assert [e.message for e in journal.read(after_id=first.id, limit=2)] == ["n1", "n2"]
    assert [e.message for e in journal.read(newest_first=True, limit=2)] == ["n4", "n3"]


def test_old_events_are_pruned_after_the_retention(tmp_path: Path, clock: FakeClock) -> None:
    journal = Journal.for_data_dir(tmp_path, clock=clock, retention=timedelta(days=2))
    journal.append("old", "old")
    clock.advance(timedelta(days=3).total_seconds())
    journal.append("new", "new")
    assert [e.kind for e in journal.read()] == ["new"]


def test_listeners_see_each_event_and_a_failing_one_stops_nothing(journal: Journal) -> None:
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("bug")

    journal.subscribe(broken)
    journal.subscribe(seen.append)
    journal.append("rollback.done", "back on r1")
    assert [e.kind for e in seen] == ["rollback.done"]
    assert len(journal.read()) == 1


def test_a_full_disk_keeps_events_in_memory_until_it_can_write(journal: Journal) -> None:
    journal.append("first", "fits")
    # A real SQLITE_FULL: the file may not grow by a single page.
    pages = journal._conn.execute("PRAGMA page_count").fetchone()[0]
    journal._conn.execute(f"PRAGMA max_page_count = {pages}")
    big = {"blob": "x" * 200_000}
    failed = journal.append("probe.failed", "front door failing", body=big)
    assert failed.id == 0
    # read while it waits: shown after what is written (id 0), so the API tells it now
    assert [(e.kind, e.id > 0) for e in journal.read()] == [("first", True), ("probe.failed", False)]
    assert [e.kind for e in journal.read(newest_first=True, limit=1)] == ["probe.failed"]
    assert [e.kind for e in journal.read(kinds=["probe"])] == ["probe.failed"]
    assert journal.read(kinds=["deploy"]) == [] and journal.read(release="r9") == []
    assert [e.kind for e in journal.read(after_id=0)] == ["first"]  # a tail sees it once it is written
    journal._conn.execute("PRAGMA max_page_count = 1073741823")
    journal.append("probe.recovered", "front door back")
    assert [e.kind for e in journal.read()] == ["first", "probe.failed", "probe.recovered"]
    assert journal.read()[1].body == big
    assert journal.dropped == 0


def test_concurrent_appends_all_land(journal: Journal) -> None:
    def write(n: int) -> None:
        for i in range(200):
            journal.append("load", f"{n}-{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(journal.read(limit=10_000)) == 800


def test_ops_db_is_private_and_readable_by_another_connection(journal: Journal, tmp_path: Path) -> None:
    journal.append("deploy.started", "deploy r2", release="r2", body={"ref": "main"})
    path = ops_db_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    reader = connect_ops_db(path, read_only=True)
    (event,) = read_events(reader, kinds=["deploy"])
    assert event.body == {"ref": "main"}
    assert json.loads(json.dumps(event.to_json()))["release"] == "r2"
    with pytest.raises(sqlite3.OperationalError):
        reader.execute("DELETE FROM events")


def test_reading_a_data_dir_without_a_journal_gives_nothing(tmp_path: Path) -> None:
    conn = connect_ops_db(tmp_path / "ops.db")
    assert read_events(conn) == []


def test_newest_of_reads_exact_kinds_newest_first_through_the_kind_index(
    journal: Journal, clock: FakeClock
) -> None:
    journal.append("backup.created", "one")
    clock.advance(1)
    journal.append("backup.created_twice", "not this kind")
    journal.append("backup.failed", "two")
    clock.advance(1)
    journal.append("probe.failed", "other")
    assert [e.message for e in journal.newest_of(("backup.created", "backup.failed"), limit=5)] == ["two", "one"]
    assert journal.newest_of(("deploy.step",)) == []
    plan = journal._conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM events WHERE kind IN (?, ?) ORDER BY at_ms DESC, id DESC LIMIT 1",
        ("backup.created", "backup.failed"),
    ).fetchall()
    assert any("events_kind_at" in str(row) for row in plan)  # not a scan of the whole journal
