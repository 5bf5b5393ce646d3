"""Edge test harness: HAProxy runs, tiny upstreams on unix sockets, a front-door client."""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from steadylink.edge import (
    EdgeConfig,
    EdgeProcess,
    is_process_running,
    read_master_status,
    start_edge,
    stop_edge,
)


@dataclass
class Behaviour:
    """What an upstream answers for anything but /healthz."""

    status: int = 200
    delay: float = 0.0
    hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: UnixHTTPServer

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        behaviour = self.server.behaviour
        status = 200
        if self.path != "/healthz":
            with behaviour.lock:
                behaviour.hits += 1
            status = behaviour.status
            if behaviour.delay:
                time.sleep(behaviour.delay)
        body = f"{status} {self.server.name}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET
    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path: Path, name: str) -> None:
        path.unlink(missing_ok=True)
        super().__init__(str(path), _Handler)
        self.name = name
        self.behaviour = Behaviour()


@dataclass
class Upstream:
    name: str
    server: UnixHTTPServer

    @property
    def behaviour(self) -> Behaviour:
        return self.server.behaviour


def ephemeral_ports() -> range:
    """The ports the kernel hands out to outgoing connections (and to bind port 0)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except OSError:
        low, high = 49152, 65535  # IANA's dynamic range: macOS and the BSDs use it
    return range(low, high + 1)


def free_port() -> int:
    """A loopback port free now, outside the ephemeral range.

    A port from binding port 0 is an ephemeral one: any process's next outgoing
    connection may take it before HAProxy binds it, and the start fails with a
    Conflict. Outside that range only a deliberate bind takes a port.
    """
    ephemeral = ephemeral_ports()
    # From 10000: clear of the usual service ports (5432, 8080...).
    candidates = [port for port in range(10_000, 65_536) if port not in ephemeral]
    # SystemRandom: a test that seeds the random module must not pick for everyone.
    for port in random.SystemRandom().sample(candidates, 50):
        with socket.socket() as probe:  # no SO_REUSEADDR: a port in TIME_WAIT is skipped too
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free loopback port outside the ephemeral range after 50 tries")


def wait_for(is_done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not is_done():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


class FrontDoor:
    """A keep-alive HTTP client of the edge's public port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def send(self, method: str = "GET", path: str = "/x") -> tuple[int, str]:
        body = b"payload" if method == "POST" else None
        try:
            self.conn.request(method, path, body=body)
            response = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.conn.request(method, path, body=body)
            response = self.conn.getresponse()
        response.read()
        return response.status, response.getheader("X-Served-By") or ""

    def close(self) -> None:
        self.conn.close()


def start_upstream(path: Path, name: str) -> Upstream:
    server = UnixHTTPServer(path, name)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return Upstream(name, server)


def stop_upstream(upstream: Upstream) -> None:
    upstream.server.shutdown()
    upstream.server.server_close()


@contextlib.contextmanager
def running_edge(config: EdgeConfig) -> Iterator[EdgeProcess]:
    """Start HAProxy; stop it by PID afterwards and check nothing is left."""
    process = start_edge(config)
    pids = [process.pid, *read_master_status(config).workers]
    try:
        yield process
    finally:
        stop_edge(process, timeout=5)
        assert not any(map(is_process_running, pids)), "HAProxy left a process behind"
