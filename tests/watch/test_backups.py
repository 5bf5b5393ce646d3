"""Every backup attempt is journaled; a failed one is a ticket until one succeeds (real failures)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.watch.test_watcher import make, second, wait_for

from steadylink.clock import FakeClock
from steadylink.errors import StoreError
from steadylink.links.sql_store import SqlStore
from steadylink.settings import Settings
from steadylink.watch.backups import failure_reason, read_backup_state, recorded_backup
from steadylink.watch.journal import Journal


@pytest.fixture
def backed(tmp_path: Path, sqlite_store: SqlStore) -> Settings:
    """Settings whose links database is a real SQLite store with the schema, in ``tmp_path``."""
    return Settings().with_overrides(data_dir=tmp_path, database=sqlite_store.url)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KB tmpfs filled to the last byte (needs root, as the test VM runs)."""
    where = tmp_path / "small-disk"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):  # ENOSPC: full
            while True:
                os.write(fd, b"x" * 4096)
        os.close(fd)
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def failed_events(journal: Journal) -> list[str]:
    return [str(e.body["reason"]) for e in journal.read(kinds=["backup.failed"])]


def test_a_backup_to_a_full_disk_is_a_failed_attempt_said_in_one_sentence(
    backed: Settings, full_disk: Path, clock: FakeClock
) -> None:
    journal = Journal.for_data_dir(backed.data_dir, clock=clock)
    try:
        with pytest.raises(StoreError) as raised:
            recorded_backup(settings=backed, clock=clock, journal=journal, output=full_disk / "links.db")
        sentence = f"The backup could not be written to {full_disk}: its disk is full."
        assert raised.value.message == sentence
        assert failed_events(journal) == [sentence]
        assert not list(full_disk.glob("*.db")) and not list(full_disk.glob(".*.tmp"))
        assert read_backup_state(journal).failed_reason == sentence
    finally:
        journal.close()


def test_a_target_that_cannot_be_written_is_a_failed_attempt(
    backed: Settings, tmp_path: Path, clock: FakeClock
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    journal = Journal.for_data_dir(backed.data_dir, clock=clock)
    try:
        with pytest.raises(StoreError, match="it is not a folder"):
            recorded_backup(
                settings=backed, clock=clock, journal=journal, output=tmp_path / "a-file" / "links.db"
            )
        [event] = journal.read(kinds=["backup.failed"])
        assert event.severity == "error" and event.body["error"] == "FileExistsError"
        assert event.message == f"backup failed: The backup could not be written under {tmp_path / 'a-file'}: it is not a folder."
    finally:
        journal.close()


def test_a_database_that_does_not_answer_is_a_failed_attempt(tmp_path: Path, clock: FakeClock) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = Settings().with_overrides(
        data_dir=tmp_path, database=f"postgresql://steadylink@127.0.0.1:{port}/links"
    )
    journal = Journal.for_data_dir(tmp_path, clock=clock)
    try:
        with pytest.raises(StoreError, match=r"^The links database did not answer the backup \(\w+\)\.$"):
            recorded_backup(settings=settings, clock=clock, journal=journal)
        [event] = journal.read(kinds=["backup.failed"])
        assert "refused" in event.body["detail"].lower()  # the driver's words stay in the journal only
    finally:
        journal.close()


def test_a_success_is_journaled_and_ends_the_failing_state(
    backed: Settings, tmp_path: Path, clock: FakeClock
) -> None:
    journal = Journal.for_data_dir(backed.data_dir, clock=clock)
    try:
        (tmp_path / "a-file").write_text("")
        with pytest.raises(StoreError):
            recorded_backup(settings=backed, clock=clock, journal=journal, output=tmp_path / "a-file" / "x.db")
        clock.advance(60)
        done = recorded_backup(settings=backed, clock=clock, journal=journal, output=tmp_path / "elsewhere.db")
        [created] = journal.read(kinds=["backup.created"])
        assert created.body["target"] == str(done.report.backup.path) and created.body["links"] == 0
        state = read_backup_state(journal)
        assert state.failed_reason is None and state.newest_created_at == clock.now().timestamp()
    finally:
        journal.close()


def test_the_guard_tickets_a_failed_backup_run_by_another_process_and_a_success_resolves_it(
    backed: Settings, tmp_path: Path
) -> None:
    watch, clock, inbox, _ = make(tmp_path)
    # `steadylink backup` runs in a process of its own: its own connection to ops.db
    other = Journal.for_data_dir(tmp_path, clock=clock)
    try:
        (tmp_path / "a-file").write_text("")
        with pytest.raises(StoreError):
            recorded_backup(settings=backed, clock=clock, journal=other, output=tmp_path / "a-file" / "x.db")
        watch.read_checks(slow=True)
        second(watch, clock, True)
        wait_for(lambda: len(inbox.notices) == 1)
        [ticket] = inbox.notices
        assert (ticket.action, ticket.rule, ticket.severity) == ("trigger", "backup_failed", "ticket")
        assert "it is not a folder" in ticket.summary
        fired_at = clock.now().timestamp()
        assert watch.book.open["backup_failed"].fired_at == fired_at

        recorded_backup(settings=backed, clock=clock, journal=other, output=tmp_path / "good.db")
        watch.read_checks(slow=True)
        for _ in range(4):  # the quiet seconds before a resolve
            second(watch, clock, True)
        wait_for(lambda: len(inbox.notices) == 2)
        assert inbox.notices[1].action == "resolve" and inbox.notices[1].dedup_key == ticket.dedup_key
        # written outside <data dir>/backups, yet a verified backup: the age counts from it
        watch.read_checks(slow=True)
        assert watch.readings.backup_age_seconds == 4
    finally:
        other.close()
        watch.stop()


def test_a_full_disk_is_told_as_such_when_the_copy_fails_with_enospc(tmp_path: Path) -> None:
    error = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.db"))
    assert failure_reason(error, tmp_path / "x.db") == f"The backup could not be written to {tmp_path}: its disk is full."
