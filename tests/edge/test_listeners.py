"""The front door's listening sockets, held by the guard and lent to HAProxy."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from tests.edge.edge_harness import FrontDoor, Upstream, free_port, wait_for

from steadylink.edge import EdgeConfig, SlotSetting, read_master_status, render_config, start_edge, stop_edge
from steadylink.edge.listeners import HeldListeners
from steadylink.edge.process import EdgeProcess, is_process_running, restart_edge
from steadylink.errors import ConfigError, Conflict


def test_held_sockets_listen_and_are_inherited_by_children() -> None:
    port = free_port()
    held = HeldListeners.open("127.0.0.1", [port])
    try:
        [fd] = held.fds
        assert os.get_inheritable(fd)
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # the kernel accepts it into the queue: nobody has to be accepting yet
    finally:
        held.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_a_taken_port_is_named_and_nothing_is_left_open() -> None:
    free, taken = free_port(), free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", taken))
        other.listen()
        with pytest.raises(Conflict, match=f"Port {taken} on 127.0.0.1 is already in use"):
            HeldListeners.open("127.0.0.1", [free, taken])
    # the first port was bound before the second failed: it was let go
    HeldListeners.open("127.0.0.1", [free]).close()


def test_the_config_binds_the_inherited_sockets(tmp_path: Path) -> None:
    config = EdgeConfig(run_dir=tmp_path, port=8080, listen_fds=(7,))
    assert "    bind fd@7\n" in render_config(config)
    assert "bind 127.0.0.1:8080" not in render_config(config)
    pem = tmp_path / "site.pem"
    tls = replace(config, tls_certs=(pem,), listen_fds=(7, 9))
    assert f"    bind fd@9 ssl crt {pem} alpn h2,http/1.1" in render_config(tls)
    with pytest.raises(ConfigError, match="listen_fds"):
        render_config(replace(tls, listen_fds=(7,)))


def _haproxy_on_a_held_socket(edge_config: EdgeConfig) -> tuple[HeldListeners, EdgeConfig, EdgeProcess]:
    held = HeldListeners.open(edge_config.host, [edge_config.port])
    config = replace(edge_config, listen_fds=held.fds, initial={0: SlotSetting(10, "ready")})
    edge = start_edge(config)
    assert FrontDoor(config.port).send() == (200, "s0")
    return held, config, edge


def _a_client_waits_for_the_next_haproxy(edge: EdgeProcess, config: EdgeConfig) -> EdgeProcess:
    """No HAProxy runs now: a client connects all the same, is queued, and is answered by the next one."""
    answers: list[tuple[int, str]] = []
    waiting = threading.Thread(target=lambda: answers.append(FrontDoor(config.port).send()))
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive() and answers == []  # queued, not refused
    edge = restart_edge(edge, config)
    waiting.join(timeout=10)
    assert answers == [(200, "s0")]
    return edge


@pytest.mark.e2e
def test_clients_wait_for_a_restarted_haproxy_instead_of_being_refused(
    edge_config: EdgeConfig, upstreams: list[Upstream]
) -> None:
    held, config, edge = _haproxy_on_a_held_socket(edge_config)
    try:
        [worker] = read_master_status(config).workers
        os.kill(worker, signal.SIGKILL)  # the master exits with its worker
        wait_for(lambda: not is_process_running(edge.pid), 5)
        edge = _a_client_waits_for_the_next_haproxy(edge, config)
    finally:
        stop_edge(edge, timeout=5)
        held.close()


@pytest.mark.e2e
def test_an_haproxy_being_replaced_is_killed_at_once_even_when_stopped(
    edge_config: EdgeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    edge = start_edge(edge_config)
    pids = [edge.pid, *read_master_status(edge_config).workers]
    real_kill = os.kill
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)  # a stopped process handles no polite signal
        sent: list[int] = []
        monkeypatch.setattr(os, "kill", lambda pid, sig: (sent.append(sig), real_kill(pid, sig))[1])
        stop_edge(edge, graceful=False)
        assert set(sent) <= {signal.SIGKILL, 0} and signal.SIGKILL in sent
        assert not any(map(is_process_running, pids))
    finally:
        for pid in pids:  # whatever the outcome, nothing stays behind
            with contextlib.suppress(ProcessLookupError):
                real_kill(pid, signal.SIGKILL)


@pytest.mark.e2e
def test_copies_taken_from_a_running_haproxy_keep_clients_waiting_after_it_dies(
    edge_config: EdgeConfig, upstreams: list[Upstream]
) -> None:
    # the guard that lent HAProxy its socket is gone (killed): only HAProxy's master holds it now
    first, config, edge = _haproxy_on_a_held_socket(edge_config)
    first.close()
    taken = HeldListeners.take_from(edge.pid, config.listen_fds, config.host, [config.port])
    try:
        os.kill(edge.pid, signal.SIGKILL)
        wait_for(lambda: not is_process_running(edge.pid), 5)
        edge = _a_client_waits_for_the_next_haproxy(edge, replace(config, listen_fds=taken.fds))
    finally:
        stop_edge(edge, timeout=5)
        taken.close()


def test_a_descriptor_that_is_not_the_listener_is_refused_and_nothing_is_kept_open() -> None:
    port = free_port()
    held = HeldListeners.open("127.0.0.1", [port])
    try:
        with pytest.raises(OSError, match=f"not the listener on 127.0.0.1:{port + 1}"):
            HeldListeners.take_from(os.getpid(), held.fds, "127.0.0.1", [port + 1])
        before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(OSError, match="not the listener"):
            HeldListeners.take_from(os.getpid(), (0,), "127.0.0.1", [port])
        assert len(os.listdir("/proc/self/fd")) == before
        copy = HeldListeners.take_from(os.getpid(), held.fds, "127.0.0.1", [port])
        copy.close()
    finally:
        held.close()
    with pytest.raises(OSError):
        HeldListeners.take_from(2**22 - 7, (3,), "127.0.0.1", [port])  # no such process


def test_inherited_descriptors_are_taken_only_when_they_are_the_front_doors_listeners() -> None:
    port = free_port()
    held = HeldListeners.open("127.0.0.1", [port])
    try:
        again = HeldListeners.inherited(held.fds, "127.0.0.1", [port])
        assert again.fds == held.fds
        for one in again.sockets:
            one.detach()  # the same descriptors as `held`: closed once, by it
        with pytest.raises(OSError, match=f"not the listener on 127.0.0.1:{port + 1}"):
            HeldListeners.inherited(held.fds, "127.0.0.1", [port + 1])
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # a refusal left the descriptor open: still listening
    finally:
        held.close()
