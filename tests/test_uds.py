"""HTTP over a unix socket with no TLS set-up per transport."""

from __future__ import annotations

import socket as socketlib
import time
from pathlib import Path

import httpx
from tests.edge.edge_harness import start_upstream, stop_upstream

from steadylink import uds


def test_transports_share_one_tls_context_and_speak_http(tmp_path: Path) -> None:
    socket = tmp_path / "s.sock"
    upstream = start_upstream(socket, "s0")
    upstream.behaviour.status = 204
    try:
        # loading the CA bundle once, not once a probe (it was ~50 ms of CPU each)
        assert uds._unused_tls() is uds._unused_tls()
        for _ in range(2):
            with httpx.Client(transport=uds.uds_transport(socket), base_url="http://x") as client:
                assert client.get("/x").status_code == 204
    finally:
        stop_upstream(upstream)


def test_a_status_is_read_and_silence_is_none_within_the_timeout(tmp_path: Path) -> None:
    socket = tmp_path / "s.sock"
    upstream = start_upstream(socket, "s0")
    upstream.behaviour.status = 204
    try:
        assert uds.get_status(socket, "/x", timeout=2) == 204
    finally:
        stop_upstream(upstream)
    assert uds.get_status(tmp_path / "none.sock", "/healthz", timeout=1) is None
    silent = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    silent.bind(str(tmp_path / "silent.sock"))
    silent.listen(1)  # accepts (the kernel does), never answers
    try:
        started = time.monotonic()
        assert uds.get_status(tmp_path / "silent.sock", "/healthz", timeout=0.3) is None
        assert time.monotonic() - started < 2
    finally:
        silent.close()
