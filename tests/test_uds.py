"""HTTP over a unix socket with no TLS set-up per transport."""

from __future__ import annotations

import http.server
import socketserver
import threading
from pathlib import Path
from typing import Any

import httpx

from steadylink import uds


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> Any:
        request, _ = super().get_request()
        return request, ("local", 0)  # BaseHTTPRequestHandler wants a (host, port)


def test_transports_share_one_tls_context_and_speak_http(tmp_path: Path) -> None:
    socket = tmp_path / "s.sock"
    server = _UnixServer(str(socket), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # loading the CA bundle once, not once a probe (it was ~50 ms of CPU each)
        assert uds._unused_tls() is uds._unused_tls()
        for _ in range(2):
            with httpx.Client(transport=uds.uds_transport(socket), base_url="http://x") as client:
                assert client.get("/healthz").status_code == 204
    finally:
        server.shutdown()
        server.server_close()


def test_a_status_is_read_and_silence_is_none_within_the_timeout(tmp_path: Path) -> None:
    import socket as socketlib
    import time

    socket = tmp_path / "s.sock"
    server = _UnixServer(str(socket), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert uds.get_status(socket, "/healthz", timeout=2) == 204
    finally:
        server.shutdown()
        server.server_close()
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
