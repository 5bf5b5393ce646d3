from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tests.edge.edge_harness import (
    FrontDoor,
    Upstream,
    ephemeral_ports,
    free_port,
    running_edge,
    wait_for,
)

from steadylink.edge import (
    EdgeConfig,
    EdgeProcess,
    SlotSetting,
    adopt_edge,
    build_start_command,
    ensure_edge,
    explain_early_exit,
    explain_start_failure,
    find_haproxy,
    is_edge_running,
    is_process_running,
    read_master_status,
    reload_edge,
    start_edge,
    stop_edge,
    wait_for_slot,
)
from steadylink.edge.process import read_pid
from steadylink.errors import ConfigError, Conflict, EdgeError

BIND_FAILURE = (
    "[NOTICE]   (20584) : haproxy version is 2.6.12-1+deb12u4\n"
    "[ALERT]    (20584) : Binding [/run/haproxy.cfg:12] for frontend web: cannot bind socket "
    "(Address already in use) for [127.0.0.1:18080]\n"
    "[ALERT]    (20584) : [haproxy.main()] Some protocols failed to start their listeners! "
    "Exiting.\n"
)


def test_start_command_runs_a_daemonised_master_with_a_pid_file() -> None:
    config = EdgeConfig(run_dir=Path("/run/sl"))
    assert build_start_command("/usr/sbin/haproxy", config) == [
        "/usr/sbin/haproxy", "-W", "-D",
        "-p", "/run/sl/haproxy.pid",
        "-S", "/run/sl/master.sock,mode,600",
        "-f", "/run/sl/haproxy.cfg",
    ]  # fmt: skip


def test_haproxys_bind_failure_names_the_port() -> None:
    error = explain_start_failure(BIND_FAILURE, EdgeConfig(run_dir=Path("/run/sl"), port=9))
    assert isinstance(error, Conflict)
    assert "port 18080 " in str(error)


def test_other_start_failures_quote_haproxys_alerts() -> None:
    error = explain_start_failure("[ALERT] (1) : something broke\n", EdgeConfig(run_dir=Path("/")))
    assert isinstance(error, ConfigError)
    assert "something broke" in str(error)


def test_an_early_exit_quotes_haproxys_alerts_and_says_how_to_see_more() -> None:
    config = EdgeConfig(run_dir=Path("/run/sl"))
    output = "[NOTICE] (7) : New worker (8) forked\n[ALERT] (8) : [haproxy.main()] Cannot chroot(/nowhere).\n"
    message = explain_early_exit(output, "/usr/sbin/haproxy", config)
    assert "[ALERT] (8) : [haproxy.main()] Cannot chroot(/nowhere)." in message
    assert "run /usr/sbin/haproxy -db -f /run/sl/haproxy.cfg" in message
    assert "printed no alert" in explain_early_exit("[NOTICE] (7) : New worker (8) forked\n", "h", config)


def test_edge_tests_get_ports_no_outgoing_connection_can_take() -> None:
    ports = {free_port() for _ in range(20)}
    assert not ports & set(ephemeral_ports())


def test_starting_without_haproxy_says_how_to_install_it(edge_config: EdgeConfig) -> None:
    with pytest.raises(ConfigError, match="run scripts/setup"):
        start_edge(edge_config, binary="no-such-haproxy-binary")


@pytest.mark.e2e
def test_busy_port_is_named_and_nothing_is_started(edge_config: EdgeConfig) -> None:
    with socket.socket() as squatter:
        squatter.bind((edge_config.host, edge_config.port))
        squatter.listen()
        with pytest.raises(Conflict, match=f"Port {edge_config.port} "):
            start_edge(edge_config)
    assert not edge_config.pid_file.exists()


@pytest.mark.e2e
def test_a_port_an_outgoing_connection_holds_is_a_conflict(edge_config: EdgeConfig) -> None:
    # What a test's port picked by binding port 0 risks: another process's
    # connect() takes it as its source port before HAProxy binds it.
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname()) as outgoing,
    ):
        taken = replace(edge_config, port=outgoing.getsockname()[1])
        with pytest.raises(Conflict, match=f"Port {taken.port} "):
            start_edge(taken)
    assert not edge_config.pid_file.exists()


@pytest.mark.e2e
def test_a_worker_that_fails_to_start_is_explained_and_nothing_is_left(
    edge_config: EdgeConfig, tmp_path: Path
) -> None:
    # The master has written its pid file when its worker fails (here: a
    # chroot into nowhere, which only the worker does) and then exits too.
    extra = tmp_path / "chroot.cfg"
    extra.write_text("global\n    chroot /nonexistent-steadylink-dir\n")
    wrapper = tmp_path / "haproxy-chrooted"
    wrapper.write_text(f'#!/bin/sh\nexec {find_haproxy()} "$@" -f {extra}\n')
    wrapper.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(EdgeError, match=r"exited right after it started \(.*Cannot chroot") as raised:
        start_edge(edge_config, binary=str(wrapper))
    assert time.monotonic() - started < 5, "the exit was noticed only when the wait timed out"
    assert f"-db -f {edge_config.config_file}" in str(raised.value)
    assert read_pid(edge_config) is None
    assert not _processes_mentioning(str(edge_config.run_dir))


@pytest.mark.e2e
def test_the_master_is_found_while_it_re_executes_itself(edge_config: EdgeConfig) -> None:
    # Right after writing its pid file the master execs itself into its wait
    # mode; while execve() runs, /proc/<pid>/cmdline is empty. Watch through
    # that moment of a few starts: the master must never look gone.
    stop_edge(start_edge(edge_config), timeout=5)  # installs the config and state file
    command = build_start_command(find_haproxy(), edge_config)
    masters: list[int] = []
    misses: list[int] = []

    def watch_the_start() -> None:
        deadline = time.monotonic() + 5
        while not edge_config.pid_file.exists() or not edge_config.pid_file.read_text().endswith("\n"):
            if time.monotonic() > deadline:
                return
        masters.append(int(edge_config.pid_file.read_text()))
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            if read_pid(edge_config) is None and is_process_running(masters[-1]):
                misses.append(masters[-1])

    for _ in range(5):
        watcher = threading.Thread(target=watch_the_start)
        watcher.start()
        subprocess.run(command, check=True, capture_output=True)
        watcher.join()
        wait_for(lambda: adopt_edge(edge_config) is not None)
        adopted = adopt_edge(edge_config)
        assert adopted is not None
        stop_edge(adopted, timeout=5)
    assert len(masters) == 5 and misses == []


@pytest.mark.e2e
def test_a_stale_pid_file_naming_another_program_does_not_block_a_start(edge_config: EdgeConfig) -> None:
    # The PID was reused by a program whose command line happens to say haproxy.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "haproxy"])
    try:
        edge_config.run_dir.mkdir(parents=True, exist_ok=True)
        edge_config.pid_file.write_text(f"{other.pid}\n")
        assert read_pid(edge_config) is None
        with running_edge(edge_config) as edge:
            assert edge.pid != other.pid
    finally:
        other.kill()
        other.wait()


@pytest.mark.e2e
def test_front_door_serves_only_ready_slots(
    edge: EdgeProcess, upstreams: list[Upstream], front_door: FrontDoor
) -> None:
    assert front_door.send() == (503, "")
    edge.runtime.set_state(1, "ready")
    edge.runtime.set_weight(1, 5)
    assert front_door.send() == (200, "s1")


@pytest.mark.e2e
def test_stop_leaves_no_process_behind(edge_config: EdgeConfig) -> None:
    edge = start_edge(edge_config)
    pids = [edge.pid, *read_master_status(edge_config).workers]
    assert len(pids) == 2 and all(map(is_process_running, pids))
    stop_edge(edge, timeout=5)
    assert not any(map(is_process_running, pids))
    assert not is_edge_running(edge)
    assert adopt_edge(edge_config) is None


@pytest.mark.e2e
def test_a_restarted_guard_adopts_the_running_haproxy(edge: EdgeProcess) -> None:
    adopted = adopt_edge(edge.config)
    assert adopted is not None and adopted.pid == edge.pid
    assert ensure_edge(edge.config).pid == edge.pid
    with pytest.raises(Conflict, match=f"pid {edge.pid}"):
        start_edge(edge.config)


@pytest.mark.e2e
def test_reload_replaces_the_worker_and_keeps_slot_weights(
    edge: EdgeProcess, upstreams: list[Upstream], front_door: FrontDoor
) -> None:
    edge.runtime.set_state(0, "ready")
    edge.runtime.set_weight(0, 7)
    old_workers = read_master_status(edge.config).workers
    reloaded = reload_edge(edge, replace(edge.config, error_limit=3))
    status = read_master_status(edge.config)
    assert status.reloads == 1 and status.workers != old_workers
    stats = reloaded.runtime.server_stats()
    assert (stats[0].status, stats[0].weight) == ("UP", 7)
    assert stats[1].status == "MAINT"
    assert front_door.send() == (200, "s0")
    assert "error-limit 3" in edge.config.config_file.read_text()


@pytest.mark.e2e
def test_reload_with_a_bad_config_keeps_the_old_one_serving(
    edge: EdgeProcess, upstreams: list[Upstream], front_door: FrontDoor, tmp_path: Path
) -> None:
    edge.runtime.set_state(0, "ready")
    edge.runtime.set_weight(0, 1)
    with pytest.raises(ConfigError, match="unable to stat SSL certificate"):
        reload_edge(edge, replace(edge.config, tls_certs=(tmp_path / "missing.pem",)))
    assert read_master_status(edge.config).reloads == 0
    assert front_door.send() == (200, "s0")


@pytest.mark.e2e
def test_graceful_stop_lets_the_request_in_flight_finish(
    edge_config: EdgeConfig, upstreams: list[Upstream]
) -> None:
    config = replace(edge_config, initial={0: SlotSetting(10, "ready")})
    upstreams[0].behaviour.delay = 0.4
    results: list[tuple[int, str]] = []
    with running_edge(config) as edge:
        slow = threading.Thread(target=lambda: results.append(FrontDoor(config.port).send()))
        slow.start()
        wait_for_slot(edge.runtime, 0, lambda s: s.scur == 1, timeout=5)
        stop_edge(edge, timeout=5)
        slow.join(timeout=5)
    assert results == [(200, "s0")]


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and is_process_running(int(entry)):
                found.append(int(entry))
    return found
