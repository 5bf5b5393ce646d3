"""The edge visit reader as a process: what it read outlives a `kill -9`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from steadylink.edge.visitreader import JOURNAL_FILE, STATE_FILE
from steadylink.links.spool import VisitSpool


def line(seq: int, code: str = "abc", pid: int = 7) -> bytes:
    return f"{pid} {seq} /{code}\t-\tcurl/8.0\n".encode()


def start_reader(data_dir: Path, flush_seconds: float) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYLINK_")}
    argv = [sys.executable, "-m", "steadylink", "--data-dir", str(data_dir), "edge", "read-visits"]
    return subprocess.Popen([*argv, "--flush-seconds", str(flush_seconds)], env=env)


def connect(path: Path, reader: subprocess.Popen[bytes]) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        assert reader.poll() is None, "the reader exited"
        try:
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(str(path))
            return conn
        except OSError:
            conn.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def spooled(spool: VisitSpool) -> Counter[str]:
    found: Counter[str] = Counter()
    for path in spool.waiting():
        found.update(entry.split("\t", 1)[0] for entry in path.read_text().split("\n") if entry)
    return found


def wait_until(is_done: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not is_done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


@pytest.fixture
def readers(tmp_path: Path) -> Iterator[Callable[[Path, float], subprocess.Popen[bytes]]]:
    """Start readers; whatever a test does, none is left running."""
    started: list[subprocess.Popen[bytes]] = []

    def start(data_dir: Path, flush_seconds: float) -> subprocess.Popen[bytes]:
        started.append(start_reader(data_dir, flush_seconds))
        return started[-1]

    yield start
    for reader in started:
        if reader.poll() is None:
            reader.kill()
            reader.wait(timeout=10)


@pytest.mark.e2e
def test_visits_a_reader_read_before_it_was_killed_are_counted_by_the_next(
    tmp_path: Path, readers: Callable[[Path, float], subprocess.Popen[bytes]]
) -> None:
    data_dir = tmp_path / "data"
    run_dir, spool = data_dir / "run", VisitSpool(data_dir / "visits")
    journal = run_dir / JOURNAL_FILE
    # a first reader counts two visits and stops as the guard stops it: it flushes
    first = readers(data_dir, 60)
    with connect(run_dir / "visits.sock", first) as conn:
        conn.sendall(line(1) + line(2))
        wait_until(lambda: journal.exists() and journal.stat().st_size == 2 * len(line(1)))
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
    assert sum(spooled(spool).values()) == 2 and journal.read_bytes() == b""
    # the next one reads five more and a line cut in two, and is killed long before its flush
    second = readers(data_dir, 60)
    sent = b"".join(line(n) for n in range(3, 8)) + line(8)[:5]
    with connect(run_dir / "visits.sock", second) as conn:
        conn.sendall(sent)
        wait_until(lambda: journal.stat().st_size == len(sent))
        second.kill()
        second.wait(timeout=10)
    assert sum(spooled(spool).values()) == 2
    # HAProxy sends some lines again when the next reader is there, then goes on
    third = readers(data_dir, 0.2)
    with connect(run_dir / "visits.sock", third) as conn:
        conn.sendall(line(2) + line(6) + line(7) + line(8) + line(9))
        wait_until(lambda: sum(spooled(spool).values()) == 9)
        third.send_signal(signal.SIGTERM)
        assert third.wait(timeout=10) == 0
    state = json.loads((run_dir / STATE_FILE).read_text())
    assert (state["received"], state["lost"], state["damaged"]) == (9, 0, 0)
    assert spooled(spool) == Counter({"abc": 9})  # each visit once
    assert journal.read_bytes() == b""  # all of it is in the spool
