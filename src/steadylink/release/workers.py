"""Worker groups: one release's ``steadylink serve`` on one unix socket.

The worker contract (version 1) between the guard and a release, which is
*another version of the code* than the guard: the guard runs

    <release python> -m steadylink serve --uds SOCKET --data-dir DIR
                     --database URL --workers N

with ``STEADYLINK_RELEASE_ID`` set; the release answers ``GET /healthz`` on the
socket when it is ready and writes its logs to stdout/stderr (the guard sends
them to ``<run_dir>/<release>.log``). Worker groups run in their own session,
so a guard that dies leaves them serving, and a restarted guard adopts them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from steadylink.clock import Clock, SystemClock
from steadylink.edge import is_process_running
from steadylink.errors import ReleaseError

WORKER_CONTRACT = 1
# stop_workers repeats SIGTERM this often while it waits (see there why).
TERM_AGAIN_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerSpec:
    release_id: str
    python: Path
    socket: Path
    data_dir: Path
    database: str
    workers: int = 1
    extra_env: tuple[tuple[str, str], ...] = ()

    @property
    def log_file(self) -> Path:
        return self.socket.with_suffix(".log")


def migrate_with_release(
    python: Path, *, database: str, data_dir: Path, timeout: float = 300
) -> tuple[bool, str]:
    """Run a release's own migrations (its ``steadylink db upgrade``) on ``database``.

    Returns whether they succeeded and the last 2,000 characters of their output.
    """
    argv = [
        str(python), "-m", "steadylink", "--database", database, "--data-dir", str(data_dir),
        "db", "upgrade",
    ]  # fmt: skip
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    return done.returncode == 0, (done.stdout + done.stderr)[-2000:]


def build_worker_command(spec: WorkerSpec) -> list[str]:
    return [
        str(spec.python),
        "-m",
        "steadylink",
        "serve",
        "--uds",
        str(spec.socket),
        "--data-dir",
        str(spec.data_dir),
        "--database",
        spec.database,
        "--workers",
        str(spec.workers),
    ]


def build_worker_env(spec: WorkerSpec, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    env.update(
        STEADYLINK_RELEASE_ID=spec.release_id,
        STEADYLINK_DATA_DIR=str(spec.data_dir),
        STEADYLINK_DATABASE=spec.database,
        STEADYLINK_WORKER_CONTRACT=str(WORKER_CONTRACT),
    )
    env.update(dict(spec.extra_env))
    return env


def start_workers(spec: WorkerSpec) -> int:
    """Start the group in its own session; return the leader's pid."""
    spec.socket.parent.mkdir(parents=True, exist_ok=True)
    spec.socket.unlink(missing_ok=True)
    with spec.log_file.open("ab") as log:
        process = subprocess.Popen(
            build_worker_command(spec),
            env=build_worker_env(spec),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process.pid


def probe_socket(socket: Path, path: str = "/healthz", *, timeout: float = 1.0) -> int | None:
    """The HTTP status ``path`` answers on ``socket``, or None if nothing answers."""
    if not socket.exists():
        return None
    try:
        with httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket)),
            base_url="http://release",
            timeout=timeout,
        ) as client:
            return client.get(path).status_code
    except httpx.HTTPError:
        return None


def wait_until_healthy(
    spec: WorkerSpec,
    pid: int,
    *,
    timeout: float = 30.0,
    clock: Clock | None = None,
    sleep: Callable[[float], None] | None = None,
) -> None:
    """Wait until the group answers /readyz 200; ReleaseError if it dies or times out."""
    import time

    clock = clock or SystemClock()
    sleep = sleep or time.sleep
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        if not is_alive(pid):
            raise ReleaseError(f"Release {spec.release_id} exited while starting:\n{read_log_tail(spec)}")
        if probe_socket(spec.socket, "/readyz") == 200:
            return
        sleep(0.1)
    raise ReleaseError(
        f"Release {spec.release_id} did not become ready within {timeout:g}s:\n{read_log_tail(spec)}"
    )


def read_log_tail(spec: WorkerSpec, lines: int = 15) -> str:
    try:
        text = spec.log_file.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:])


def is_alive(pid: int) -> bool:
    """True while the group's leader runs; reaps it first if it is our exited child."""
    with contextlib.suppress(ChildProcessError):
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    return is_process_running(pid)


def stop_workers(
    pid: int,
    *,
    timeout: float = 10.0,
    clock: Clock | None = None,
    sleep: Callable[[float], None] | None = None,
) -> None:
    """SIGTERM the group's session (again every second), wait, then SIGKILL what is left.

    Again, because granian forks its workers after installing its own SIGTERM
    handler: until a worker's event loop installs the worker's handler, a
    SIGTERM runs the inherited one, which only flags granian's main process
    in the worker's copy. The worker goes on to serve and the main process
    waits on it for good, so a group stopped while it starts needs a second
    SIGTERM. Once the loop's handler is in place, more are harmless.
    """
    import time

    clock = clock or SystemClock()
    sleep = sleep or time.sleep
    if not is_alive(pid):
        return
    _signal_group(pid, signal.SIGTERM)
    deadline = clock.monotonic() + timeout
    next_term = clock.monotonic() + TERM_AGAIN_SECONDS
    while clock.monotonic() < deadline:
        if not is_alive(pid):
            _signal_group(pid, signal.SIGKILL)  # stragglers in the session
            return
        if clock.monotonic() >= next_term:
            _signal_group(pid, signal.SIGTERM)
            next_term += TERM_AGAIN_SECONDS
        sleep(0.05)
    _signal_group(pid, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: wait (briefly) until the leader is gone
    deadline = clock.monotonic() + 5
    while is_alive(pid) and clock.monotonic() < deadline:
        sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
