"""Start, adopt, reload and stop HAProxy in master-worker mode.

HAProxy runs daemonised (``-W -D``): the start command returns once the
config is loaded and the ports are bound, and its exit status says whether
that worked. A worker that fails after that (its own start comes later) takes
the master with it; ``start_edge`` notices and quotes what the worker said.
The master's PID goes to ``<run_dir>/haproxy.pid`` so a guard
that restarts finds it again (``adopt_edge``) instead of starting a second one.
Commands are argv lists built by pure functions; the functions below run them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from steadylink.clock import Clock, SystemClock
from steadylink.edge.config import EdgeConfig, render_config
from steadylink.edge.runtime import RuntimeClient
from steadylink.errors import ConfigError, Conflict, EdgeError

INSTALL_HINT = "haproxy is not installed; run scripts/setup"
_KNOWN_PATHS = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/opt/homebrew/sbin/haproxy")
_EMPTY_STATE = "1\n"  # a server-state file with a version line and no servers


@dataclass(frozen=True)
class EdgeProcess:
    """A running HAProxy master and the config it was started with."""

    pid: int
    config: EdgeConfig
    binary: str
    runtime: RuntimeClient = field(compare=False)


def find_haproxy(binary: str | None = None) -> str:
    """The haproxy executable to use; ConfigError when there is none."""
    if binary is not None:
        found = shutil.which(binary)
        if found is None:
            raise ConfigError(f"{INSTALL_HINT} ({binary!r} was not found).")
        return found
    found = shutil.which("haproxy") or next((p for p in _KNOWN_PATHS if os.access(p, os.X_OK)), None)
    if found is None:
        raise ConfigError(INSTALL_HINT + ".")
    return found


def build_check_command(binary: str, config_file: Path) -> list[str]:
    return [binary, "-c", "-f", str(config_file)]


def build_start_command(binary: str, config: EdgeConfig) -> list[str]:
    return [
        binary, "-W", "-D",
        "-p", str(config.pid_file),
        "-S", f"{config.master_socket},mode,600",
        "-f", str(config.config_file),
    ]  # fmt: skip


def check_config(config: EdgeConfig, *, binary: str | None = None) -> None:
    """Render ``config`` and have ``haproxy -c`` validate it; ConfigError if it refuses."""
    _write_checked_config(config, find_haproxy(binary), install=False)


def ensure_port_free(host: str, port: int) -> None:
    """Conflict naming the port when something already listens on it."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # SO_REUSEADDR ignores TIME_WAIT leftovers; no SO_REUSEPORT, so another
        # HAProxy (which binds with it) is detected instead of sharing the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise Conflict(
                f"Port {port} on {host} is already in use ({exc.strerror}); "
                "stop what listens there or choose another port."
            ) from exc


def start_edge(
    config: EdgeConfig, *, binary: str | None = None, timeout: float = 10.0,
    keep_state: bool = False, clock: Clock | None = None,
) -> EdgeProcess:  # fmt: skip
    """Start HAProxy for ``config`` and wait until its runtime API answers."""
    exe = find_haproxy(binary)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    running = read_pid(config)
    if running is not None:
        raise Conflict(f"HAProxy already runs for {config.run_dir} as pid {running}; adopt it.")
    if not config.listen_fds:  # inherited sockets are bound already
        ensure_port_free(config.host, config.port)
        if config.has_tls:
            ensure_port_free(config.host, config.tls_port)
    _write_checked_config(config, exe, install=True)
    if not keep_state or not config.state_file.exists():
        config.state_file.write_text(_EMPTY_STATE)
    # run() returns once every holder of its stderr pipe has let go: the
    # launcher, the master (when it has forked the worker) and the worker (when
    # it has finished starting, or failed to). So what the worker printed while
    # it started is in done.stderr, even when the launcher exited with 0.
    argv = build_start_command(exe, config)
    done = subprocess.run(argv, capture_output=True, text=True, check=False, pass_fds=config.listen_fds)
    if done.returncode != 0:
        raise explain_start_failure(done.stderr, config)
    try:
        pid = _wait_for_pid(config.pid_file, timeout, clock)
        edge = EdgeProcess(pid, config, exe, RuntimeClient(config.stats_socket))

        def is_ready() -> bool:
            # A worker that fails to start makes the master exit too.
            if not is_process_running(edge.pid):
                raise EdgeError(explain_early_exit(done.stderr, exe, config))
            return _is_ready(edge)

        _wait_until(is_ready, timeout, clock, "HAProxy's runtime sockets to answer")
    except EdgeError:
        leftover = read_pid(config)
        if leftover is not None:  # started but not answering: leave nothing behind
            stop_edge(EdgeProcess(leftover, config, exe, RuntimeClient(config.stats_socket)), timeout=2.0)
        raise
    return edge


def adopt_edge(config: EdgeConfig, *, binary: str | None = None) -> EdgeProcess | None:
    """The HAProxy already running for ``config.run_dir``, if any."""
    pid = read_pid(config)
    if pid is None:
        return None
    edge = EdgeProcess(pid, config, find_haproxy(binary), RuntimeClient(config.stats_socket))
    return edge if edge.runtime.is_answering() else None


def ensure_edge(config: EdgeConfig, *, binary: str | None = None) -> EdgeProcess:
    """Adopt the running HAProxy, or start one keeping the last saved slot state."""
    return adopt_edge(config, binary=binary) or start_edge(config, binary=binary, keep_state=True)


def reload_edge(
    edge: EdgeProcess, config: EdgeConfig | None = None, *,
    timeout: float = 10.0, clock: Clock | None = None,
) -> EdgeProcess:  # fmt: skip
    """Apply a new config without dropping connections; slot weights and states survive."""
    new = config or edge.config
    _write_checked_config(new, edge.binary, install=True)
    new.state_file.write_text(edge.runtime.dump_servers_state())
    before = read_master_status(new)
    os.kill(edge.pid, signal.SIGUSR2)

    def is_reloaded() -> bool:
        with contextlib.suppress(EdgeError):
            return read_master_status(new).reloads > before.reloads
        return False

    _wait_until(is_reloaded, timeout, clock, "HAProxy to reload")
    after = read_master_status(new)
    if after.failed > before.failed:
        raise ConfigError("HAProxy refused the new configuration and keeps the old one.")
    reloaded = EdgeProcess(edge.pid, new, edge.binary, RuntimeClient(new.stats_socket))
    _wait_until(reloaded.runtime.is_answering, timeout, clock, "the new HAProxy worker")
    return reloaded


def stop_edge(
    edge: EdgeProcess, *, timeout: float = 10.0, clock: Clock | None = None, graceful: bool = True
) -> None:
    """Stop gracefully (in-flight requests finish), then by force; no process is left.

    ``graceful=False`` kills at once: for an HAProxy being replaced because it died or
    stopped answering, where waiting for a stopped (SIGSTOP) or hung process to handle a
    polite signal only keeps the front door closed longer.
    """
    pids = [edge.pid, *_children(edge.pid)]  # a stopped master's CLI does not answer
    with contextlib.suppress(EdgeError):
        pids += read_master_status(edge.config, timeout=2.0 if graceful else 0.5).workers
    pids = list(dict.fromkeys(pids))
    steps = ((signal.SIGUSR1, timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0))
    for sig, wait in steps if graceful else steps[2:]:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(EdgeError):
            _wait_until(lambda: not any(map(is_process_running, pids)), wait, clock, "HAProxy to stop")
            break
    edge.config.pid_file.unlink(missing_ok=True)


def restart_edge(edge: EdgeProcess | None, config: EdgeConfig, *, binary: str | None = None) -> EdgeProcess:
    """Start HAProxy again after its master died or stopped answering (the supervisor's hook).

    What is left of the old one is killed first — only while its recorded PID
    still runs haproxy, so a reused PID is never signalled. ``config.initial``
    carries the slot weights to start with (no saved server state is used: it
    may be older than the weights the guard holds).
    """
    if edge is not None and read_pid(edge.config) is not None:
        stop_edge(edge, graceful=False)
    return start_edge(config, binary=binary or (edge.binary if edge else None), keep_state=False)


def _children(pid: int) -> list[int]:
    """The processes ``pid`` forked (HAProxy's workers), from ``/proc``; none where it is missing."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def is_edge_running(edge: EdgeProcess) -> bool:
    return is_process_running(edge.pid)


def is_process_running(pid: int) -> bool:
    """True for a live process; False for a gone or zombie one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = process_state(pid)
    return state is None or state not in ("Z", "X")  # None: no /proc (macOS), signal 0 is all we know


def process_state(pid: int) -> str | None:
    """The process's state letter from ``/proc/<pid>/stat`` (``T``: stopped by a signal); None
    when it cannot be read (gone, or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0] if fields else None


def command_line(pid: int) -> bytes | None:
    """The process's command line (arguments joined by NULs); None when it cannot be read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def read_pid(config: EdgeConfig) -> int | None:
    """The live HAProxy master PID recorded in the run dir, if any."""
    pid = _read_pid_file(config.pid_file)
    if pid is None or not is_process_running(pid) or not _runs_haproxy(pid):
        return None
    return pid


def _read_pid_file(path: Path) -> int | None:
    """The PID HAProxy wrote to ``path``; None until a whole line is there."""
    try:
        first, newline, _ = path.read_text().partition("\n")
    except OSError:
        return None
    return int(first) if newline and first.strip().isdigit() else None


def _wait_for_pid(path: Path, timeout: float, clock: Clock | None) -> int:
    """The master's PID: the launcher may exit before the master has written it."""
    found: list[int] = []

    def has_pid() -> bool:
        pid = _read_pid_file(path)
        found[:] = [] if pid is None else [pid]
        return bool(found)

    _wait_until(has_pid, timeout, clock, f"a pid in {path}")
    return found[0]


def _runs_haproxy(pid: int) -> bool:
    """False when ``pid`` runs another program: the PID was reused.

    /proc/<pid>/exe first: right after writing its pid file the master
    re-executes itself (to wait on its worker, and again on each reload), and
    while execve() runs its /proc/<pid>/cmdline reads as empty. The exe link
    stays on the binary throughout.
    """
    with contextlib.suppress(OSError):
        return "haproxy" in Path(os.readlink(f"/proc/{pid}/exe")).name
    command = command_line(pid)  # not ours to look at: the command line is readable by all
    return command is None or b"haproxy" in command  # None: no /proc (macOS), signal 0 is all we know


@dataclass(frozen=True)
class MasterStatus:
    reloads: int
    failed: int
    workers: list[int]


def read_master_status(config: EdgeConfig, *, timeout: float = 2.0) -> MasterStatus:
    """Reload counters and worker PIDs from the master CLI's ``show proc``."""
    text = RuntimeClient(config.master_socket, timeout=timeout).run("show proc")
    master = re.search(r"^\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]", text, re.MULTILINE)
    if master is None:
        raise EdgeError(f"Unexpected answer from HAProxy's master CLI: {text[:200]!r}")
    workers = [int(m) for m in re.findall(r"^(\d+)\s+worker\b", text, re.MULTILINE)]
    return MasterStatus(int(master.group(1)), int(master.group(2)), workers)


def _is_ready(edge: EdgeProcess) -> bool:
    try:
        read_master_status(edge.config)
    except EdgeError:
        return False
    return edge.runtime.is_answering()


def _write_checked_config(config: EdgeConfig, binary: str, *, install: bool) -> None:
    config.run_dir.mkdir(parents=True, exist_ok=True)
    candidate = config.config_file.with_suffix(".cfg.new")
    # Checked as if HAProxy bound the ports itself: `haproxy -c` binds nothing, but it
    # wants an inherited socket open in the checker — and a guard that adopted HAProxy
    # knows the numbers of the master's sockets without holding them.
    candidate.write_text(render_config(dataclasses.replace(config, listen_fds=())))
    done = subprocess.run(build_check_command(binary, candidate), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        candidate.unlink(missing_ok=True)
        raise ConfigError(f"HAProxy rejects the generated config: {_alerts(done.stdout + done.stderr)}")
    if install:
        candidate.write_text(render_config(config))
        candidate.replace(config.config_file)
    else:
        candidate.unlink()


def explain_start_failure(stderr: str, config: EdgeConfig) -> Exception:
    """The error to raise for ``haproxy``'s stderr when it did not start."""
    if "cannot bind socket" in stderr or "Address already in use" in stderr:
        ports = re.findall(r"for \[[^\]]*:(\d+)\]", stderr) or [str(config.port)]
        return Conflict(
            f"HAProxy cannot bind port {', '.join(sorted(set(ports)))} on {config.host}: "
            "it is in use. Stop what listens there or choose another port."
        )
    return ConfigError(f"HAProxy did not start: {_alerts(stderr)}")


def explain_early_exit(output: str, binary: str, config: EdgeConfig) -> str:
    """Why the master is gone although the launcher said it started.

    ``output`` is what the launcher's run captured: a worker that fails while
    starting prints its ALERT there before the master follows it out.
    """
    why = _alerts(output) if "ALERT" in output else "it printed no alert"
    see_more = f"run {binary} -db -f {config.config_file} to see more"
    return f"HAProxy exited right after it started ({why}); {see_more}."


def _alerts(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if "ALERT" in line]
    return " | ".join(lines or [output.strip()[:500]])


def _wait_until(is_done: Callable[[], bool], timeout: float, clock: Clock | None, what: str) -> None:
    clock = clock or SystemClock()
    deadline = clock.monotonic() + timeout
    while not is_done():
        if clock.monotonic() >= deadline:
            raise EdgeError(f"Timed out after {timeout:g}s waiting for {what}.")
        time.sleep(0.02)
