import os
import signal
import socket as socketlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steadylink.errors import Conflict, ReleaseError
from steadylink.release.processes import is_group_gone, read_group
from steadylink.release.workers import (
    WorkerSpec,
    build_worker_command,
    build_worker_env,
    is_alive,
    migrate_with_release,
    private_socket,
    probe_socket,
    publish_socket,
    read_log_tail,
    remove_stale_socket,
    start_workers,
    stop_workers,
    wait_until_healthy,
)


def spec(tmp_path: Path, python: str = sys.executable) -> WorkerSpec:
    return WorkerSpec(
        release_id="r1",
        python=Path(python),
        socket=tmp_path / "s.sock",
        data_dir=tmp_path / "data",
        database=f"sqlite:///{tmp_path / 'data' / 'links.db'}",
        workers=2,
        extra_env=(("STEADYLINK_BASE_URL", "http://sl.example"),),
    )


def test_the_worker_contract_is_plain_data(tmp_path: Path) -> None:
    s = spec(tmp_path)
    assert build_worker_command(s) == [
        sys.executable,
        "-m",
        "steadylink",
        "serve",
        "--uds",
        str(tmp_path / "s.sock"),
        "--data-dir",
        str(tmp_path / "data"),
        "--database",
        s.database,
        "--workers",
        "2",
    ]
    env = build_worker_env(s, {"PATH": "/bin", "VIRTUAL_ENV": "/x", "PYTHONPATH": "/y"})
    assert env["STEADYLINK_RELEASE_ID"] == "r1"
    assert env["STEADYLINK_BASE_URL"] == "http://sl.example"
    assert "VIRTUAL_ENV" not in env and "PYTHONPATH" not in env
    assert s.log_file == tmp_path / "s.log"


@pytest.mark.e2e
def test_a_release_starts_answers_and_stops_leaving_nothing(tmp_path: Path) -> None:
    s = spec(tmp_path)
    pid = start_workers(s)
    try:
        wait_until_healthy(s, pid, timeout=90)
        assert probe_socket(s.socket) == 200
        assert probe_socket(s.socket, "/readyz") == 200
    finally:
        stop_workers(pid)
    assert not is_alive(pid)
    assert probe_socket(s.socket) is None


@pytest.mark.e2e
def test_a_release_stopped_while_its_workers_start_stops_gracefully_at_once(tmp_path: Path) -> None:
    # granian forks its workers after installing its own SIGTERM handler; until
    # a worker's loop installs its handler, a SIGTERM runs that inherited one
    # and is lost, and the worker goes on to serve. Stop right after the fork.
    s = spec(tmp_path)
    pid = start_workers(s)
    try:
        deadline = time.monotonic() + 60
        while "Spawning worker-2" not in s.log_file.read_text():
            assert time.monotonic() < deadline, read_log_tail(s)
            time.sleep(0.01)
    finally:
        started = time.monotonic()
        stop_workers(pid)
    took = time.monotonic() - started
    assert not is_alive(pid)
    assert took < 5, f"stopped only after {took:.1f}s (by SIGKILL)"
    assert "Granian shutdown completed" in s.log_file.read_text()


def test_a_release_that_exits_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho 'ImportError: no module named app' >&2\nexit 1\n")
    fake_python.chmod(0o755)
    s = spec(tmp_path, str(fake_python))
    pid = start_workers(s)
    with pytest.raises(ReleaseError, match="exited while starting") as info:
        wait_until_healthy(s, pid, timeout=30)
    assert "ImportError" in info.value.message
    assert not is_alive(pid)


def test_a_release_migrates_a_database_with_its_own_command(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'copy.db'}"
    ok, output = migrate_with_release(Path(sys.executable), database=database, data_dir=tmp_path)
    assert ok and "head" in output
    failing = tmp_path / "python"
    failing.write_text("#!/bin/sh\necho 'alembic: no such revision' >&2\nexit 1\n")
    failing.chmod(0o755)
    assert migrate_with_release(failing, database=database, data_dir=tmp_path) == (
        False,
        "alembic: no such revision\n",
    )


def test_stopping_a_group_whose_leader_is_dead_stops_its_orphans(tmp_path: Path) -> None:
    # like granian's workers after a kill -9 of their leader: still in its group, serving
    script = "import os, time\nos.fork() or time.sleep(60)\nos.fork()\ntime.sleep(60)\n"
    leader = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(read_group(leader.pid).processes) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(leader.pid, signal.SIGKILL)
    leader.wait()
    os.killpg(leader.pid, signal.SIGSTOP)  # a stopped process holds SIGTERM pending
    stop_workers(leader.pid, timeout=5)
    assert is_group_gone(leader.pid)


def test_a_published_socket_is_removed_only_while_it_is_the_one_published(tmp_path: Path) -> None:
    public = tmp_path / "slot0.sock"
    first = private_socket(public, "a")
    assert first == tmp_path / "slot0.a.sock"
    first.write_text("")
    lease = publish_socket(first, public)
    assert lease.is_current() and not first.exists()
    second = private_socket(public, "b")
    second.write_text("")
    newer = publish_socket(second, public)  # a later group took the slot's name
    assert not lease.remove()
    assert public.exists()
    assert newer.remove() and not public.exists()


def test_a_live_socket_is_never_replaced_and_a_stale_one_is(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socketlib.socket(socketlib.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        with pytest.raises(Conflict):
            remove_stale_socket(path)
        assert path.exists()
    remove_stale_socket(path)  # nobody listens any more
    assert not path.exists()
