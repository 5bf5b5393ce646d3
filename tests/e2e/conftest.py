"""Shared end-to-end fixtures: a real ``steadylink serve`` and a site to land on.

``serve_steadylink`` starts the command as a subprocess on a free loopback
port with a data directory of its own, waits until ``/healthz`` answers and
stops it by its PID at teardown. The command is plain data
(``serve_command``) so a test can read exactly what was run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from tests.edge.edge_harness import free_port  # outside the ephemeral range: no race

STEADYLINK = Path(sys.executable).with_name("steadylink")
START_TIMEOUT = 90.0  # a loaded 2-core CI box has taken 45 s to import and migrate
STOP_TIMEOUT = 10.0


def serve_command(*, port: int, data_dir: Path) -> list[str]:
    return [
        str(STEADYLINK), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data_dir),
    ]


@dataclass
class ServedApp:
    base_url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_until_healthy(served: ServedApp, *, timeout: float = START_TIMEOUT) -> None:
    """Poll ``/healthz`` until it answers 200; fail with the server's log if it never does."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            pytest.fail(
                f"steadylink serve exited with {served.process.returncode} before it was "
                f"healthy:\n{served.log_tail()}"
            )
        try:
            response = httpx.get(f"{served.base_url}/healthz", timeout=1.0)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}"
        except httpx.TransportError as exc:
            last_error = type(exc).__name__
        time.sleep(0.1)
    pytest.fail(f"steadylink serve not healthy after {timeout}s ({last_error}):\n{served.log_tail()}")


def stop_served(served: ServedApp) -> None:
    """SIGTERM the server's PID; if it lingers, kill the process group it leads."""
    process = served.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # start_new_session made the server a group leader: its pid is the group id,
            # so this reaches its workers and nothing else.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def run_steadylink(tmp: Path, *, env: dict[str, str] | None = None) -> Iterator[ServedApp]:
    """Run ``steadylink serve`` for the duration of a ``with`` block."""
    port = free_port()
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{port}"
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STEADYLINK_")},
        "STEADYLINK_BASE_URL": base_url,
        **(env or {}),
    }
    log_path = tmp / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            serve_command(port=port, data_dir=data_dir),
            cwd=tmp,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = ServedApp(base_url, data_dir, log_path, process)
    try:
        wait_until_healthy(served)
        yield served
    finally:
        stop_served(served)


@pytest.fixture(scope="module")
def served_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """One server per test module: starting one costs seconds, a test milliseconds."""
    with run_steadylink(tmp_path_factory.mktemp("served")) as served:
        yield served


# a site for links to land on -----------------------------------------------------

LANDING_HTML = b"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Landed</title></head><body><h1 id="landed">You have arrived.</h1></body></html>"""


class _LandingHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(LANDING_HTML)))
        self.end_headers()
        self.wfile.write(LANDING_HTML)

    def log_message(self, format: str, *args: object) -> None:
        return None  # keep test output quiet


@dataclass(frozen=True)
class LandingSite:
    url: str
    """Reached as ``localhost``: a different host from the shortener's ``127.0.0.1``,
    which refuses links to itself."""


@pytest.fixture
def landing_site() -> Iterator[LandingSite]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LandingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LandingSite(f"http://localhost:{server.server_address[1]}/landing")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session", autouse=True)
def _remove_work_dirs() -> Iterator[None]:
    """The /tmp/sl-* work folders of the guard tests go when the session ends (their guards stopped)."""
    from tests.e2e.guard_harness import remove_work_dirs

    yield
    remove_work_dirs()
