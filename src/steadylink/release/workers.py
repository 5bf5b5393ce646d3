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
import socket as socketlib
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from steadylink.clock import Clock, SystemClock
from steadylink.edge import is_process_running
from steadylink.errors import Conflict, ReleaseError
from steadylink.release.processes import is_group_gone
from steadylink.uds import get_status

WORKER_CONTRACT = 1
# stop_workers repeats SIGTERM this often while it waits (see there why).
TERM_AGAIN_SECONDS = 1.0
AFTER_LEADER_SECONDS = 2.0


@dataclass(frozen=True)
class WorkerSpec:
    release_id: str
    python: Path
    socket: Path
    data_dir: Path
    database: str
    workers: int = 1
    extra_env: tuple[tuple[str, str], ...] = ()
    log: Path | None = None  # default: beside the socket, same name

    @property
    def log_file(self) -> Path:
        return self.log or self.socket.with_suffix(".log")


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
    remove_stale_socket(spec.socket)
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


def remove_stale_socket(path: Path) -> None:
    """Delete a socket file nobody listens on; Conflict if a process still answers there."""
    if not path.exists():
        return
    with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink(missing_ok=True)
            return
    raise Conflict(f"{path} is in use by another process; it is not the guard's to replace.")


def probe_socket(socket: Path, path: str = "/healthz", *, timeout: float = 1.0) -> int | None:
    """The HTTP status ``path`` answers on ``socket``, or None if nothing answers."""
    if not socket.exists():
        return None
    return get_status(socket, path, timeout=timeout)


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
    """Stop the whole group (leader, workers, compactor); nothing of it is left on return.

    SIGCONT first (a stopped process keeps a SIGTERM pending), then SIGTERM to
    the group's session again every second, until every process of the group
    is gone; SIGKILL for what is left at the deadline. The group, not the
    leader: a leader killed before its workers leaves them serving as
    orphans, still in its group.

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

    def is_gone() -> bool:
        is_alive(pid)  # reaps the leader if it is our exited child
        return is_group_gone(pid)

    if is_gone():
        return
    _signal_group(pid, signal.SIGCONT)
    _signal_group(pid, signal.SIGTERM)
    deadline = clock.monotonic() + timeout
    next_term = clock.monotonic() + TERM_AGAIN_SECONDS
    while clock.monotonic() < deadline:
        if is_gone():
            return
        if not is_alive(pid):
            # granian's leader exits after its workers: what is left is the compactor's
            # last pass or orphans; they get a short grace, not the whole timeout
            deadline = min(deadline, clock.monotonic() + AFTER_LEADER_SECONDS)
        if clock.monotonic() >= next_term:
            _signal_group(pid, signal.SIGTERM)
            next_term += TERM_AGAIN_SECONDS
        sleep(0.05)
    _signal_group(pid, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: wait (briefly) until the group is gone
    deadline = clock.monotonic() + 5
    while not is_gone() and clock.monotonic() < deadline:
        sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def signal_processes(pids: Iterable[int], sig: signal.Signals) -> None:
    """Send ``sig`` to each of ``pids`` that still exists."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def start_compactor(spec: WorkerSpec, leader: int) -> int:
    """A new visit compactor for a running group; returns its pid.

    The command ``serve`` starts (``steadylink compact --follow LEADER``), with
    the release's own Python, so it exits when the group's leader does. It
    runs in a session of its own (a process cannot join a group in another
    session); the guard stops it with the group (``stop_workers`` on its pid).
    """
    argv = [
        str(spec.python), "-m", "steadylink", "--data-dir", str(spec.data_dir),
        "--database", spec.database, "compact", "--follow", str(leader),
    ]  # fmt: skip
    with spec.log_file.open("ab") as log:
        process = subprocess.Popen(
            argv, env=build_worker_env(spec), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _children.append(process)
    return process.pid


# Compactors the guard started: kept so they are waited for (no zombie) when they exit.
_children: list[subprocess.Popen[bytes]] = []


def reap_children() -> None:
    """Wait for the compactors this process started that have exited."""
    _children[:] = [p for p in _children if p.poll() is None]


@dataclass(frozen=True)
class SocketLease:
    """A published slot socket: the file a group bound, renamed to the slot's name.

    The guard removes a slot socket only when it is still this very file
    (same device and inode): a socket another group has published there since
    is not its to delete.
    """

    path: Path
    device: int
    inode: int

    def is_current(self) -> bool:
        try:
            found = self.path.lstat()
        except OSError:
            return False
        return (found.st_dev, found.st_ino) == (self.device, self.inode)

    def remove(self) -> bool:
        """Delete the socket file if it is still this lease's; True if it was removed."""
        if not self.is_current():
            return False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return True


def publish_socket(private: Path, public: Path) -> SocketLease:
    """Rename the socket a group bound at ``private`` to ``public`` (atomically), and lease it.

    A group binds a socket path of its own and keeps it: granian deletes the
    path it bound when it stops, so a group never deletes a later group's
    socket at the slot's name, even when it is stopped long after.
    """
    os.replace(private, public)
    found = public.lstat()
    return SocketLease(public, found.st_dev, found.st_ino)


def private_socket(public: Path, nonce: str) -> Path:
    """Where a group starting for slot socket ``public`` binds first (same directory)."""
    return public.with_name(f"{public.stem}.{nonce}{public.suffix}")
