"""A real guard for end-to-end tests: `steadylink up` as a subprocess, a source
repository made from this checkout, seeded links and a steady load through
the front door that checks every response."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.edge.edge_harness import free_port  # outside the ephemeral range: no race

from steadylink.edge import is_process_running

ROOT = Path(__file__).resolve().parents[2]
STEADYLINK = [sys.executable, "-m", "steadylink"]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_source_repo(where: Path) -> Path:
    """A git repository holding this checkout's app (src/, pyproject.toml, README.md)."""
    repo = where / "source"
    repo.mkdir()
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    shutil.copy(ROOT / "README.md", repo / "README.md")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.com")
    git(repo, "config", "user.name", "New Hire")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "version 1")
    return repo


def commit_variant(repo: Path, branch: str, path: str, old: str, new: str, message: str) -> None:
    """A branch off main with one line changed, like the seed incidents' version 2."""
    git(repo, "checkout", "-q", "main")
    git(repo, "checkout", "-q", "-B", branch)
    target = repo / path
    text = target.read_text()
    assert old in text, f"{old!r} not found in {path}"
    target.write_text(text.replace(old, new, 1))
    git(repo, "commit", "-qam", message)
    git(repo, "checkout", "-q", "main")


@dataclass
class LoadReport:
    requests: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)


class SteadyLoad:
    """~rate req/s through the front door: 90 % redirects, 10 % creations, all checked."""

    def __init__(self, base: str, key: str, links: dict[str, str], rate: float = 100.0) -> None:
        self.base, self.key, self.links, self.rate = base, key, dict(links), rate
        self.report = LoadReport()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        rng = random.Random(7)
        codes = list(self.links)
        with httpx.Client(base_url=self.base, timeout=5.0) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                self.report.requests += 1
                try:
                    if rng.random() < 0.9:
                        code = rng.choice(codes)
                        r = client.get(f"/{code}", headers={"Referer": "https://news.example/a"})
                        if r.status_code != 302 or r.headers.get("location") != self.links[code]:
                            self.report.failures.append((time.time(), f"GET /{code}: {r.status_code}"))
                    else:
                        r = client.post(
                            "/api/v1/links",
                            json={"url": f"https://load.example/{rng.random()}"},
                            headers={"Authorization": f"Bearer {self.key}"},
                        )
                        if r.status_code != 201:
                            self.report.failures.append((time.time(), f"POST: {r.status_code} {r.text[:80]}"))
                except httpx.HTTPError as exc:
                    self.report.failures.append((time.time(), f"{type(exc).__name__}: {exc}"))
                pause = 1.0 / self.rate - (time.monotonic() - started)
                if pause > 0:
                    time.sleep(pause)


class GuardStack:
    """`steadylink up` on free loopback ports, stopped by PID at the end.

    A start that fails (times out, exits) stops what it started before it
    raises, so a fixture that calls ``start`` outside its ``try`` leaves
    nothing running; ``stop`` also ends, by PID, what an ``up`` killed with -9
    left behind (its HAProxy and workers) and says which ones it had to.
    """

    def __init__(self, workdir: Path, source: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.source = source
        self.data_dir = workdir / "d"
        self.port, self.ops_port = free_port(), free_port()
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None
        self.front = f"http://127.0.0.1:{self.port}"

    def cli(
        self, *args: str, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*STEADYLINK, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, "STEADYLINK_DATA_DIR": str(self.data_dir), **(env or {})},
            cwd=self.workdir,
            check=False,
        )

    @contextlib.contextmanager
    def running(self) -> Iterator[GuardStack]:
        """Started, and stopped afterwards: also when the start itself failed half-way."""
        try:
            self.start()
            yield self
        finally:
            self.stop()

    def start(self, timeout: float = 240) -> None:
        log = (self.workdir / "up.log").open("ab")
        self.process = subprocess.Popen(
            [
                *STEADYLINK,
                "up",
                "--port",
                str(self.port),
                "--ops-port",
                str(self.ops_port),
                "--data-dir",
                str(self.data_dir),
                "--source",
                str(self.source),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.workdir,
        )
        log.close()  # the child has its own copy
        try:
            wait_until(self._is_up, timeout, "steadylink up to serve (the first up builds its first release)")
        except BaseException:
            self.stop()
            raise

    def _is_up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError("steadylink up exited:\n" + (self.workdir / "up.log").read_text()[-3000:])
        try:
            ops = httpx.get(f"http://127.0.0.1:{self.ops_port}/healthz", timeout=1).status_code
            front = httpx.get(f"{self.front}/healthz", timeout=1).status_code
        except httpx.HTTPError:
            return False
        return ops == 200 and front == 200

    @property
    def key(self) -> str:
        return (self.data_dir / "run" / "operator.key").read_text().strip()

    def stop(self) -> list[int]:
        """SIGTERM to `up` (it stops its HAProxy and workers), SIGKILL if it hangs; then the PIDs
        of this data folder still alive (left by an `up` that died) are killed and returned."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        left = [pid for pid in pids_in(self.data_dir) if is_process_running(pid) and self._is_ours(pid)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return left

    def _is_ours(self, pid: int) -> bool:
        """A PID read from a file may have been reused: only one started for this work folder."""
        try:
            seen = Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        return str(self.workdir).encode() in seen

    def seed_links(self, n: int) -> dict[str, str]:
        links = {}
        with httpx.Client(base_url=self.front, headers={"Authorization": f"Bearer {self.key}"}) as client:
            for i in range(n):
                r = client.post("/api/v1/links", json={"url": f"https://seed.example/{i}"})
                assert r.status_code == 201, r.text
                links[r.json()["code"]] = r.json()["url"]
        return links


WORK_DIRS: list[Path] = []  # removed at the end of the session (tests/e2e/conftest.py)


def short_tmp() -> Path:
    """Unix socket paths are limited to ~100 bytes: keep the work dir short (/tmp/sl-*)."""
    made = Path(tempfile.mkdtemp(prefix="sl-", dir="/tmp"))
    WORK_DIRS.append(made)
    return made


def remove_work_dirs(*only: Path) -> None:
    """Remove the work folders ``short_tmp`` made (all of them, or ``only`` these)."""
    for path in list(only or WORK_DIRS):
        shutil.rmtree(path, ignore_errors=True)
        WORK_DIRS.remove(path)


def pids_in(data_dir: Path) -> list[int]:
    """The slot workers and HAProxy a guard recorded in its data folder."""
    try:
        state = json.loads((data_dir / "run" / "guard.json").read_text())
    except (FileNotFoundError, ValueError):
        return []
    pids = [int(e["pid"]) for e in state.get("slots", {}).values() if e.get("pid")]
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        pids.append(int((data_dir / "run" / "haproxy.pid").read_text().split()[0]))
    return pids


