"""The faults of the fault tier, each run the same way against a real ``steadylink serve``.

A fault row: links created and visited once (held in memory) before, a
checked load (``load.py``) throughout, the fault injected for ``during``
seconds, then healed; afterwards every acknowledged link must redirect to its
URL and every visit a user got a redirect for must be counted in the store.
``tests/e2e/test_faults.py`` asserts the targets on each row; ``bench/faults.py``
prints the rows as a table.

Faults: PostgreSQL blackholed through a proxy this code controls
(``tcp_proxy.py``: connections stay open, nothing passes), the data dir's
disk filled (a small tmpfs, ``disk.py``), and Redis stopped (a Redis of our
own on a free port, frozen with SIGSTOP so it accepts and never answers).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from tests.edge.edge_harness import free_port
from tests.faults.disk import fill, small_disk
from tests.faults.load import CheckedLoad, Failure, Tally
from tests.faults.tcp_proxy import TcpProxy

from steadylink.links.sql_store import open_store

STEADYLINK = Path(sys.executable).with_name("steadylink")
POSTGRES_ADMIN_URL = os.environ.get(
    "STEADYLINK_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HELD_LINKS = 20


# Every request that fails under a fault fails within this (the answer bound,
# store.timeout_seconds = 0.5 s, plus a connect bounded the same way).
SLOW_FAILURE_SECONDS = 1.0


@dataclass(frozen=True)
class Row:
    fault: str
    tally: Tally
    recovery_seconds: float | None  # None: nothing failed, nothing to recover
    links_lost: int
    visits_lost: int
    seconds: float

    @property
    def failed_redirects(self) -> list[Failure]:
        return [f for f in self.tally.failures if f.kind == "redirect"]

    @property
    def slow_failures(self) -> list[Failure]:
        """Requests that failed only after more than ``SLOW_FAILURE_SECONDS`` (or never got an answer)."""
        return [f for f in self.tally.failures if f.status == 0 or f.seconds > SLOW_FAILURE_SECONDS]

    def cells(self) -> list[str]:
        recovery = "-" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f}"
        answered = [f.seconds for f in self.tally.failures if f.status != 0]
        slowest = f"{max(answered):.2f}" if answered else "-"
        return [
            f"{self.fault} ({self.seconds:.0f} s)", f"{len(self.tally.failures)}/{self.tally.total}",
            slowest, recovery, str(self.links_lost), str(self.visits_lost), self.tally.users_saw(),
        ]  # fmt: skip


@dataclass
class Server:
    base_url: str
    data_dir: Path
    database_url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def serving(
    tmp: Path, *, data_dir: Path, env: dict[str, str], log_dir: Path | None = None, workers: int = 1
) -> Iterator[Server]:
    """``steadylink serve`` on a free port; its output goes to ``log_dir`` (default ``tmp``)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STEADYLINK_")},
        "STEADYLINK_BASE_URL": base_url,
        "STEADYLINK_LIMITS_CREATE_PER_MINUTE": "0",
        **env,
    }
    argv = [str(STEADYLINK), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
            "--workers", str(workers)]  # fmt: skip
    with ((log_dir or tmp) / f"serve-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=tmp, env=child_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    database = env.get("STEADYLINK_DATABASE") or f"sqlite:///{(data_dir / 'links.db').resolve()}"
    try:
        _wait_healthy(base_url, process)
        yield Server(base_url, data_dir, database, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"steadylink serve exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"steadylink serve did not answer within {timeout} s")


def run_fault(
    name: str, server: Server, *, inject: Callable[[], None], heal: Callable[[], None],
    before: float = 3.0, during: float = 15.0, after: float = 6.0, rate: float = 100,
) -> Row:  # fmt: skip
    held = _held_links(server.base_url)
    load = CheckedLoad(server.base_url, held, rate=rate)
    load.start()
    time.sleep(before)
    _look_at(server.base_url, held)  # "held": looked at just before the fault
    inject()
    fault_at = load.now()
    time.sleep(during)
    heal()
    healed_at = load.now()
    time.sleep(after)
    tally = load.stop()
    recovery = None
    broken_after = [f for f in tally.failures if f.at >= fault_at and f.kind != "redirect"]
    if broken_after:
        first = tally.first_success_after("create", healed_at)
        recovery = (first - healed_at) if first is not None else float("inf")
    return Row(
        fault=name, tally=tally, recovery_seconds=recovery,
        links_lost=_links_lost(server.base_url, tally.acknowledged),
        visits_lost=_visits_lost(server.database_url, tally),
        seconds=healed_at - fault_at,
    )  # fmt: skip


def _held_links(base_url: str) -> dict[str, str]:
    """Links made before the fault and looked at once (HEAD: held in memory, no visit)."""
    held = {}
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for i in range(HELD_LINKS):
            url = f"https://example.com/held/{i}?q={secrets.token_hex(4)}"
            created = client.post("/api/v1/links", json={"url": url})
            assert created.status_code == 201, created.text
            code = created.json()["code"]
            assert client.head(f"/{code}").status_code == 302
            held[code] = url
    return held


def _look_at(base_url: str, held: dict[str, str]) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for code in held:
            assert client.head(f"/{code}").status_code == 302


def _links_lost(base_url: str, acknowledged: dict[str, str], timeout: float = 20) -> int:
    """Acknowledged links that do not redirect to their URL (retried while the store comes back)."""
    missing = dict(acknowledged)
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while missing and time.monotonic() < deadline:
            for code, url in list(missing.items()):
                with contextlib.suppress(httpx.HTTPError):
                    answer = client.head(f"/{code}")
                    if answer.status_code == 302 and answer.headers.get("location") == url:
                        del missing[code]
            if missing:
                time.sleep(0.5)
    return len(missing)


def _visits_lost(database_url: str, tally: Tally, timeout: float = 30) -> int:
    """Redirects users got that the store has not counted (waits for the compactor)."""
    store = open_store(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            lost = 0
            for code, expected in tally.visits.items():
                link = store.get_link(code)
                lost += max(expected - (link.visits if link else 0), 0)
            if lost == 0 or time.monotonic() > deadline:
                return lost
            time.sleep(0.5)
    finally:
        store.close()


# the faults ------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_blackholed(tmp: Path) -> Iterator[tuple[Server, TcpProxy]]:
    """A server whose PostgreSQL is reached through a proxy the caller can blackhole."""
    name = f"steadylink_faults_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN_URL)
    try:
        with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
            proxied = url.set(host="127.0.0.1", port=proxy.port, database=name)
            env = {"STEADYLINK_DATABASE": proxied.render_as_string(hide_password=False)}
            with serving(tmp, data_dir=tmp / "data", env=env) as server:
                yield server, proxy
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def disk_to_fill(tmp: Path, *, size: str = "48m") -> Iterator[Server]:
    with small_disk(tmp / "disk", size=size) as disk:
        env = {"STEADYLINK_STORE_DISK_RESERVE_BYTES": str(1024 * 1024)}
        # its log on the same disk, as the guard keeps workers' logs in the data folder; two
        # workers, as `up` runs them: their shared metrics files once died with the disk (SIGBUS)
        with serving(tmp, data_dir=disk / "data", env=env, log_dir=disk, workers=2) as server:
            yield server


def fill_disk(server: Server) -> None:
    fill(server.data_dir)


def free_disk(server: Server) -> None:
    (server.data_dir / "filler").unlink(missing_ok=True)


@contextlib.contextmanager
def redis_of_our_own(tmp: Path) -> Iterator[tuple[Server, subprocess.Popen[bytes]]]:
    """A Redis on a free port (never the shared one on 6379) and a server limiting through it."""
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise AssertionError("redis-server is needed for the Redis fault")
    port = free_port()
    redis = subprocess.Popen(
        [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_port(port)
        env = {
            "STEADYLINK_LIMITS_REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "STEADYLINK_LIMITS_CREATE_PER_MINUTE": "100000",  # counted through Redis, never reached
        }
        with serving(tmp, data_dir=tmp / "data", env=env) as server:
            yield server, redis
    finally:
        with contextlib.suppress(ProcessLookupError):
            redis.send_signal(signal.SIGCONT)
            redis.kill()
        redis.wait(timeout=10)


def _wait_port(port: int, timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")
