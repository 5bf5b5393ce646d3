from __future__ import annotations

import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from tests.edge.edge_harness import FrontDoor, Upstream, ephemeral_ports, free_port, running_edge

from steadylink.edge import (
    EdgeConfig,
    EdgeProcess,
    SlotSetting,
    adopt_edge,
    build_start_command,
    ensure_edge,
    explain_start_failure,
    is_edge_running,
    is_process_running,
    read_master_status,
    reload_edge,
    start_edge,
    stop_edge,
    wait_for_slot,
)
from steadylink.errors import ConfigError, Conflict

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
        reload_edge(edge, replace(edge.config, tls_cert=tmp_path / "missing.pem"))
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
