"""The guard's side of edge redirects: the map sync thread and the visit reader process.

``EdgeRedirects`` is what the guard holds when ``edge.redirects`` is on:

- before HAProxy starts, ``prepare`` writes the whole link map
  (``LinkMapSync.write_file``); after the guard *adopts* a running HAProxy,
  ``adopted`` rebuilds it through the runtime API, since links may have
  changed while no guard watched;
- a thread ticks the sync every ``SYNC_SECONDS`` (changes within about a
  second; a rebuild when HAProxy's worker is one the sync did not load);
  the guard's supervisor (``release/supervision.py``) starts the visit
  reader again when it dies (``is_reader_running``, ``ensure_reader``);
- ``reload`` writes the file and reloads HAProxy under the sync's lock, so no
  change falls between the file and the new worker.

The visit reader (``edge/visitreader.py``) runs as ``steadylink edge
read-visits`` in a session of its own, so it outlives a guard that dies
(HAProxy keeps answering, and visits keep being counted); its PID is kept in
``<run_dir>/edge-visits.pid`` for the next guard to adopt.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from steadylink.edge.config import EdgeConfig
from steadylink.edge.linkmap import ensure_map_file
from steadylink.edge.mapsync import SYNC_SECONDS, EventFn, LinkMapSync
from steadylink.edge.process import command_line, is_process_running, process_state
from steadylink.edge.runtime import RuntimeClient
from steadylink.edge.visitreader import read_visit_state
from steadylink.links.store import Store

READER_PID_FILE = "edge-visits.pid"
READER_LOG_FILE = "edge-visits.log"


def build_reader_command(data_dir: Path, flush_seconds: float, python: str = sys.executable) -> list[str]:
    return [
        python, "-m", "steadylink", "--data-dir", str(data_dir),
        "edge", "read-visits", "--flush-seconds", str(flush_seconds),
    ]  # fmt: skip


class EdgeRedirects:
    def __init__(
        self, config: EdgeConfig, store: Store, runtime: Callable[[], RuntimeClient], *,
        data_dir: Path, limit: int, flush_seconds: float, on_event: EventFn | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.data_dir = data_dir
        self.flush_seconds = flush_seconds
        self.on_event = on_event or (lambda _kind, _message, _severity: None)
        self.sync = LinkMapSync(store, runtime, config.link_map, limit=limit, on_event=self.on_event)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reader_pid: int | None = None

    # HAProxy's start, adoption and reload ----------------------------------------------

    def prepare(self) -> int:
        """Before HAProxy starts: the whole map file, and a reader to take the visits."""
        self.ensure_reader()
        with self.sync.lock:
            size = self.sync.write_file()
            self.sync.expect_reload()
        return size

    def adopted(self) -> None:
        """HAProxy ran before this guard: rebuild its map (links may have changed since)."""
        ensure_map_file(self.config.link_map)
        self.ensure_reader()
        with self.sync.lock:
            self.sync.rebuild()

    def reload(self, do_reload: Callable[[], None]) -> None:
        """Write the map file, then ``do_reload`` (HAProxy reads the file); changes since are replayed."""
        with self.sync.lock:
            self.sync.write_file()
            try:
                do_reload()
            finally:
                self.sync.expect_reload()

    # the thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edge-map-sync", daemon=True)
        self._thread.start()

    def stop(self, *, stop_reader: bool) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if stop_reader:
            self.stop_reader()

    def close(self) -> None:
        """At the guard's stop, after the reader: the sync's store connection."""
        self.sync.store.close()

    def _run(self) -> None:
        while not self._stop.wait(SYNC_SECONDS):
            self.sync.tick()

    # the visit reader ------------------------------------------------------------------

    def _reader_pid(self) -> int | None:
        return self.reader_pid or _read_pid(self.config.run_dir / READER_PID_FILE)

    def is_reader_running(self) -> bool:
        pid = self._reader_pid()
        return pid is not None and is_process_running(pid)

    def is_reader_stopped(self) -> bool:
        """The reader is stopped by a signal (SIGSTOP): it runs, and reads nothing."""
        pid = self._reader_pid()
        return pid is not None and process_state(pid) == "T"

    def replace_reader(self) -> int:
        """Wake the stopped reader and stop it (it writes what it read; killed after 2 s), then
        start another. Only while the PID still runs a visit reader: a reused PID is left be."""
        pid = self._reader_pid()
        if pid is not None and b"read-visits" in (command_line(pid) or b""):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # a stopped process keeps a SIGTERM pending
            self.stop_reader(timeout=2.0)
        return self.ensure_reader()

    def ensure_reader(self) -> int:
        """The running reader's PID; one is started when none runs (the supervisor's hook)."""
        pid = self._reader_pid()
        if pid is not None and is_process_running(pid):
            self.reader_pid = pid
            return pid
        with contextlib.suppress(ChildProcessError):
            if pid is not None:
                os.waitpid(pid, os.WNOHANG)  # ours, and dead: reap it
        log = (self.config.run_dir / READER_LOG_FILE).open("ab")
        with log:
            process = subprocess.Popen(
                build_reader_command(self.data_dir, self.flush_seconds),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.reader_pid = process.pid
        (self.config.run_dir / READER_PID_FILE).write_text(f"{process.pid}\n")
        return process.pid

    def stop_reader(self, timeout: float = 10.0) -> None:
        """SIGTERM the reader (it writes what it read), then SIGKILL if it does not go."""
        pid = self._reader_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_process_running(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        (self.config.run_dir / READER_PID_FILE).unlink(missing_ok=True)
        self.reader_pid = None

    def status(self) -> dict[str, object]:
        visits = read_visit_state(self.config.run_dir) or {}
        return {
            "map": self.sync.status().to_json(),
            "visits": {
                "reader_pid": self.reader_pid,
                **{k: visits.get(k) for k in ("received", "lost", "unwritten", "flushed_at", "error")},
            },
        }


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
