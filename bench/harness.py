"""What both benchmarks share: a pinned granian server, wrk runs, clean stops."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class WrkFigures:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: str

    def line(self, name: str) -> str:
        return (
            f"{name:<28} {self.requests_per_second:>10,.0f} req/s   "
            f"p50 {self.p50_ms:6.2f} ms   p99 {self.p99_ms:6.2f} ms   {self.errors}"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_granian(port: int, env: dict[str, str], *, core: int, log: Path) -> subprocess.Popen[bytes]:
    """One granian worker serving ``steadylink.web.app:app``, pinned to ``core``."""
    argv = [
        "taskset", "-c", str(core), str(VENV_BIN / "granian"), "--interface", "rsgi",
        "--loop", "uvloop", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--no-ws", "--http", "1", "steadylink.web.app:app",
    ]
    out = log.open("wb")
    process = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_until_answering(f"http://127.0.0.1:{port}/healthz", process)
    return process


def start_compactor(
    server: subprocess.Popen[bytes], env: dict[str, str], *, core: int, log: Path
) -> subprocess.Popen[bytes]:
    """``steadylink compact`` following ``server`` (as ``steadylink serve`` starts it), pinned to ``core``."""
    argv = [
        "taskset", "-c", str(core), sys.executable, "-m", "steadylink", "compact",
        "--follow", str(server.pid),
    ]  # fmt: skip
    out = log.open("wb")
    return subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory of ``pid`` and its children (granian's worker), in MB: the
    process's own (anonymous) memory, and mapped files (SQLite's mmap, code)."""
    own = files = 0
    for one in [pid, *children(pid)]:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                own += int(line.split()[1])
            elif line.startswith(("RssFile:", "RssShmem:")):
                files += int(line.split()[1])
    return own / 1024, files / 1024


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *children(int(child))]
    return found


def start_process(argv: list[str], *, log: Path, ready_url: str) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until_answering(ready_url, process)
    return process


def wait_until_answering(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM the process group we started, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_wrk(
    url: str, *, script: Path, seconds: int, core: int | None, connections: int = 64
) -> WrkFigures:
    """One wrk run; pinned to ``core`` unless it is None."""
    pin = ["taskset", "-c", str(core)] if core is not None else []
    argv = [
        *pin, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url,
    ]  # fmt: skip
    output = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> WrkFigures:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _latency_ms(output, "50%")
    p99 = _latency_ms(output, "99%")
    errors = []
    for pattern in (r"Socket errors:[^\n]+", r"Non-2xx or 3xx responses: \d+"):
        found = re.search(pattern, output)
        if found:
            errors.append(found.group(0))
    return WrkFigures(rps, p50, p99, "; ".join(errors) or "no errors")


def _latency_ms(output: str, percentile: str) -> float:
    found = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {percentile} latency in wrk output:\n{output}")
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
