"""``steadylink serve`` as a real process: TCP and unix socket, a redirect, a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import STEADYLINK, ServedApp, run_steadylink, stop_served

pytestmark = pytest.mark.e2e


def children_of(pid: int) -> set[int]:
    """Every descendant of ``pid``, from /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = {int(k) for k in (task / "children").read_text().split()}
        except OSError:
            continue
        for kid in kids - found:
            found |= {kid} | children_of(kid)
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only its parent's reaping is left


def terminate_and_check(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the PID alone; the server, every worker and the compactor must be gone within seconds."""
    workers = children_of(process.pid)
    assert workers, "granian should run at least one worker process"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    deadline = time.monotonic() + 5
    while any(is_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if is_running(pid)]


def create_and_follow(client: httpx.Client) -> None:
    created = client.post("/api/v1/links", json={"url": "https://example.com/landing?x=1", "code": "e2e-1"})
    assert created.status_code == 201, created.text
    assert created.json()["code"] == "e2e-1"
    followed = client.get("/e2e-1", follow_redirects=False)
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://example.com/landing?x=1"
    # the worker flushes the visit (≤ 1 s), serve's compactor folds it (≤ 1 s)
    deadline = time.monotonic() + 15
    while 'id="total-visits">1<' not in client.get("/s/e2e-1", headers={"accept": "text/html"}).text:
        assert time.monotonic() < deadline, "the visit never reached the stats page"
        time.sleep(0.2)


def test_serve_on_a_loopback_port(tmp_path: Path) -> None:
    with run_steadylink(tmp_path) as served:
        with httpx.Client(base_url=served.base_url, timeout=5) as client:
            create_and_follow(client)
        terminate_and_check(served.process)
        assert (served.data_dir / "links.db").is_file()  # migrated on a fresh data dir


def test_redirects_go_on_while_a_create_waits_for_the_sqlite_write_lock(tmp_path: Path) -> None:
    """The compactor's fold holds SQLite's write lock for up to a second. A create that
    waits for it must not hold up the worker's redirects: the insert runs in the
    worker's link-writer thread, not on the event loop that answers them."""
    with run_steadylink(tmp_path) as served, httpx.Client(base_url=served.base_url, timeout=5) as client:
        assert client.post("/api/v1/links", json={"url": "https://example.com/", "code": "ready"}).status_code == 201
        holder = sqlite3.connect(served.data_dir / "links.db", isolation_level=None, timeout=30)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a fold takes it
        body = b'{"url": "https://example.com/late", "code": "late"}'
        host, port = served.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as waiting:
            try:
                waiting.sendall(
                    b"POST /api/v1/links HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )
                for _ in range(20):  # one worker: the create is in it, waiting for the lock
                    assert client.get("/ready").status_code == 302
                waiting.settimeout(0.2)
                with pytest.raises(TimeoutError):
                    waiting.recv(1)  # no answer to the create while the lock is held
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            waiting.settimeout(30)
            answer = b""
            while chunk := waiting.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
        assert client.get("/late").status_code == 302


def test_serve_on_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "app.sock"
    data_dir = tmp_path / "data"
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYLINK_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(STEADYLINK), "--data-dir", str(data_dir), "serve", "--uds", str(sock)],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    served = ServedApp("http://steadylink", data_dir, log_path, process)
    try:
        deadline = time.monotonic() + 90
        while not sock.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(base_url="http://steadylink", transport=transport, timeout=5) as client:
            while not _is_healthy(client):
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"no answer on {sock}:\n{served.log_tail()}")
                time.sleep(0.1)
            create_and_follow(client)
        terminate_and_check(process)
    finally:
        stop_served(served)


def _is_healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def test_busy_port_is_refused_with_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [str(STEADYLINK), "--data-dir", str(tmp_path / "data"), "serve", "--port", str(port)],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip() == f"error: port {port} is in use; pick another with --port"
