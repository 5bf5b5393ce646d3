"""The edge visit reader: HAProxy's ring of visits in, one visit-spool file a second out.

HAProxy forwards its ring (``edge/redirects.py``) to ``<run_dir>/visits.sock``
over a unix stream; this process listens there, reads whatever is waiting in
large chunks (up to 1 MB a ``recv``, so thousands of visits per system call),
at most every ``read_interval`` seconds (20 ms): between reads the lines wait
in the socket and in HAProxy's ring, so HAProxy sends them in a few large
writes instead of waking this process for every handful of visits — about
1 µs of HAProxy's CPU per edge answer when both share a core. It
counts them with ``VisitTally`` and every ``flush_seconds`` writes them as one
file of the visit spool, where the compactor folds them like the workers'.
The guard starts it (``steadylink edge read-visits``) and starts it again if
it dies; while it is down HAProxy keeps the visits in its ring (32 MB, about
six seconds at 70k visits/s) and sends them when it is back.

What it reads is appended as it comes to ``<run_dir>/edge-visits.journal``
(one write per read, so a few dozen a second) before it is counted, and the
journal is emptied once a flush has written its visits to the spool: a
reader killed with ``kill -9`` loses nothing it had read, since the next one
counts the journal first — the file outlives the process in the page cache,
if not a crash of the whole machine. Numbers it had already counted are
recognised as such (``VisitTally``'s floors). Only a kill between a spool
write and the journal's truncation right after it (one system call) would
count that second's visits twice.

What a crash can still lose: what HAProxy had written into the socket and
this process not yet read (at most ``read_interval`` of visits), whatever
HAProxy could not keep in its ring while nobody read it, and the journal's
lines when the disk refused them.
Neither is silent: every gap in HAProxy's numbering is counted in ``lost``
and kept with the totals in ``<run_dir>/edge-visits.json`` (``steadylink
status`` shows them), and lines a full spool could not take are counted
there too.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import socket
import threading
from pathlib import Path

from steadylink.clock import Clock, SystemClock
from steadylink.edge.visits import VisitTally
from steadylink.links.spool import VisitSpool

STATE_FILE = "edge-visits.json"
JOURNAL_FILE = "edge-visits.journal"
_CHUNK = 1 << 20
# How long lines wait between reads: far below the flush second, long enough
# that HAProxy's forwarder writes large batches instead of waking us per visit.
READ_INTERVAL = 0.02
# Visits kept in memory while the spool cannot be written (disk full); past it, counted lost.
_MAX_UNWRITTEN = 1_000_000


class VisitReader:
    def __init__(
        self, socket_path: Path, spool: VisitSpool, state_file: Path, *,
        flush_seconds: float = 1.0, read_interval: float = READ_INTERVAL, clock: Clock | None = None,
    ) -> None:  # fmt: skip
        self.socket_path = socket_path
        self.spool = spool
        self.state_file = state_file
        self.flush_seconds = flush_seconds
        self.read_interval = read_interval
        self._clock = clock or SystemClock()
        self._stop = threading.Event()
        self.tally = VisitTally(day=self._today())
        self._unwritten: list[str] = []
        self.last_error: str | None = None
        with contextlib.suppress(OSError, ValueError):
            self.tally.restore(json.loads(state_file.read_text()))
        self.journal_path = state_file.with_name(JOURNAL_FILE)
        self._replay_journal()
        self._journal: int | None = None
        try:
            self.journal_path.parent.mkdir(parents=True, exist_ok=True)
            self._journal = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:  # counted all the same, only not safe from a kill -9
            self.last_error = f"cannot open the visit journal {self.journal_path}: {exc.strerror}"

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Serve until ``stop``; then write what was read."""
        listener = _listen(self.socket_path)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        next_flush = self._clock.monotonic() + self.flush_seconds
        try:
            while not self._stop.is_set():
                timeout = max(next_flush - self._clock.monotonic(), 0.0)
                read = False
                for key, _ in selector.select(min(timeout, 0.5)):
                    if key.fileobj is listener:
                        conn, _ = listener.accept()
                        conn.setblocking(False)
                        selector.register(conn, selectors.EVENT_READ)
                    else:
                        read = self._read(selector, key.fileobj) or read  # type: ignore[arg-type]
                if read:  # let the next lines gather (interrupted by stop)
                    self._stop.wait(self.read_interval)
                if self._clock.monotonic() >= next_flush:
                    self.flush()
                    next_flush = self._clock.monotonic() + self.flush_seconds
        finally:
            for key in list(selector.get_map().values()):
                with contextlib.suppress(OSError):
                    key.fileobj.close()  # type: ignore[union-attr]
            selector.close()
            self.flush()
            if self._journal is not None:
                os.close(self._journal)
            with contextlib.suppress(OSError):
                self.socket_path.unlink()

    def _read(self, selector: selectors.BaseSelector, conn: socket.socket) -> bool:
        """Take what waits on ``conn``; whether anything came."""
        try:
            chunk = conn.recv(_CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if chunk:
            self._keep(chunk)
            self.tally.feed(chunk)
            return True
        # HAProxy closed it (a reload ends the old process's stream)
        selector.unregister(conn)
        conn.close()
        return False

    def flush(self) -> int:
        """Write the visits counted since the last flush as one spool file; save the state."""
        batch = self._unwritten + self.tally.take(self._today())
        self._unwritten = []
        written = 0
        if batch:
            try:
                self.spool.write("".join(batch))
                written = len(batch)
                self.last_error = None
            except OSError as exc:
                self.last_error = f"the visit spool {self.spool.directory} refused a write: {exc.strerror}"
                keep = batch[-_MAX_UNWRITTEN:]
                self.tally.lost += len(batch) - len(keep)
                self._unwritten = keep
        if not self._unwritten:
            self._empty_journal()
        self._save_state()
        return written

    def _keep(self, chunk: bytes) -> None:
        """Into the journal before it is counted (a full disk: counted all the same, unjournaled)."""
        if self._journal is None:
            return
        try:
            os.write(self._journal, chunk)
        except OSError as exc:
            self.last_error = f"the visit journal {self.journal_path} refused a write: {exc.strerror}"

    def _empty_journal(self) -> None:
        """Everything read is in the spool now; a line cut at the end of the last read stays."""
        if self._journal is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._journal, 0)
            if self.tally.partial:
                os.write(self._journal, self.tally.partial)

    def _replay_journal(self) -> None:
        """Count what a reader killed before its flush had read (whole lines only: HAProxy
        sends the line it was cutting again when it reconnects)."""
        try:
            kept = self.journal_path.read_bytes()
        except OSError:
            return
        whole = kept[: kept.rfind(b"\n") + 1]
        if whole:
            self.tally.feed(whole)

    def _save_state(self) -> None:
        state = {**self.tally.state(), "unwritten": len(self._unwritten), "error": self.last_error,
                 "flushed_at": self._clock.now().isoformat(), "pid": os.getpid()}  # fmt: skip
        hidden = self.state_file.with_name(f".{self.state_file.name}.new")
        try:
            hidden.write_text(json.dumps(state))
            os.replace(hidden, self.state_file)
        except OSError as exc:
            self.last_error = f"cannot save {self.state_file}: {exc.strerror}"

    def _today(self) -> str:
        return self._clock.now().date().isoformat()


def read_visit_state(run_dir: Path) -> dict[str, object] | None:
    """What the reader last saved (totals, lost, last flush), for ``steadylink status``."""
    try:
        found = json.loads((run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _listen(path: Path) -> socket.socket:
    """Listen at ``path``; a stale socket file (nobody listening) is replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError), socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()
        else:
            raise OSError(f"another visit reader listens at {path}")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    listener.setblocking(False)
    return listener
