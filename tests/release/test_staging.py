"""Starting the candidate and the current release for staging."""

import subprocess
import sys
from pathlib import Path

import pytest

from steadylink.errors import StoreError
from steadylink.links.sql_store import SqlStore
from steadylink.release.guard import Guard
from steadylink.release.staging import (
    STAGE_SOCKETS,
    note_stage_groups,
    stage_release,
    stop_left_stage_groups,
    wait_all_ready,
)
from steadylink.release.workers import WorkerSpec
from steadylink.settings import Settings
from steadylink.watch.journal import Journal


def spec(tmp_path: Path, name: str) -> WorkerSpec:
    return WorkerSpec(name, Path(sys.executable), tmp_path / f"{name}.sock", tmp_path, "sqlite://")


def test_the_current_release_exiting_ends_the_wait_while_the_candidate_still_starts(tmp_path: Path) -> None:
    still_starting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    refusing = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    refusing.wait()
    current = spec(tmp_path, "20260101000000-abc1234")
    current.log_file.write_text("error: This release cannot serve this database: column links.owner is missing.\n")
    try:
        failure = wait_all_ready(
            [("candidate", spec(tmp_path, "new"), still_starting.pid), ("current", current, refusing.pid)],
            timeout=50,
        )
    finally:
        still_starting.kill()
        still_starting.wait()
    assert failure is not None
    role, error = failure
    assert role == "current"
    assert "exited while starting" in error.message and "links.owner is missing" in error.message


def test_a_group_that_never_answers_times_out_naming_itself(tmp_path: Path) -> None:
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        failure = wait_all_ready([("candidate", spec(tmp_path, "new"), silent.pid)], timeout=0.3)
    finally:
        silent.kill()
        silent.wait()
    assert failure is not None and failure[0] == "candidate"
    assert "did not become ready within 0.3s" in failure[1].message


def test_a_snapshot_that_cannot_be_written_is_a_failed_backup_in_the_journal(
    tmp_path: Path, sqlite_store: SqlStore
) -> None:
    settings = Settings().with_overrides(data_dir=tmp_path, database=sqlite_store.url)
    (tmp_path / "backups").write_text("a file where the backups folder should be")
    journal = Journal.for_data_dir(tmp_path)
    try:
        with pytest.raises(StoreError, match="it is not a folder"):
            stage_release(
                guard=Guard(settings, journal=journal), release_id="20260101000000-abc1234",
                python=Path(sys.executable), progress=lambda _: None,
            )  # fmt: skip
        [failed] = journal.read(kinds=["backup.failed"])
        assert failed.body["purpose"] == "snapshot before 20260101000000-abc1234"
    finally:
        journal.close()


def test_stage_groups_a_dead_guard_left_are_stopped_and_nothing_else(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    sleeper = "import sys, time; time.sleep(60)"
    # a stage group (its command line names the stage's socket) and a process that merely
    # got a pid the note lists (a pid reused since)
    left = subprocess.Popen(
        [sys.executable, "-c", sleeper, str(run_dir / STAGE_SOCKETS[0])], start_new_session=True
    )
    other = subprocess.Popen([sys.executable, "-c", sleeper], start_new_session=True)
    try:
        note_stage_groups(run_dir, [left.pid, other.pid, 2**22 - 3])
        lines: list[str] = []
        assert stop_left_stage_groups(run_dir, lines.append) == [left.pid]
        assert left.wait(timeout=15) is not None
        assert other.poll() is None
        assert lines == [f"stopping a stage's workers (pid {left.pid}) left by a guard that stopped mid-deploy"]
        assert not (run_dir / "stage-groups.json").exists()
        assert stop_left_stage_groups(run_dir, lines.append) == []  # no note: nothing to do
    finally:
        for process in (left, other):
            process.kill()
            process.wait()
