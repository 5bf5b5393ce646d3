"""The visit compactor: folds the workers' visits into totals and stats, off the workers.

A worker only writes its visits to the visit spool (``links/spool.py``), one
file a second. Folding them into ``links.visits`` and the per-day, referrer
and agent tables costs far more — 25-33 µs a visit on uniform random codes
over a million links (README, Performance) — so it is done
here, in a process of its own that ``steadylink serve`` starts beside
granian: every ``links.compact_seconds`` (default 1 s) it folds the waiting
files, about 100,000 visits per transaction (a backlog batch after batch,
without the pause), and any rows a release older
than the spool left in the store's visit log (which keeps working while such
a release still serves, during a canary).

So a visit shows in the stats within about two seconds: the worker's flush
(≤ 1 s) plus the next fold (≤ 1 s). Visits of links with ``max_visits`` are
counted in the store before the redirect, as before.

The compactor follows the PID it was started for (``serve`` passes its own,
which granian keeps when it replaces the process): when that process is gone,
or on SIGTERM, it folds what is left and exits. Several compactors on one
spool or one database (a canary and the stable release, several hosts) are
safe: one folds a spool at a time, and every file is folded exactly once
(see ``Store.fold_visits``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from steadylink.clock import Clock, SystemClock
from steadylink.edge.process import is_process_running
from steadylink.links.files import FileStore
from steadylink.links.spool import VisitSpool
from steadylink.links.store import Store

Warn = Callable[[str], None]


SWEEP_SECONDS = 3600.0


class Compactor:
    """Folds the spool; given the uploaded ``files``, also sweeps their orphans at start and hourly."""

    def __init__(
        self, store: Store, spool: VisitSpool, *, every: float, follow_pid: int | None = None,
        warn: Warn | None = None, clock: Clock | None = None, files: FileStore | None = None,
    ) -> None:  # fmt: skip
        self._store = store
        self._spool = spool
        self._every = every
        self._follow_pid = follow_pid
        self._warn = warn or (lambda _message: None)
        self._clock = clock or SystemClock()
        self._files = files
        self._next_sweep = 0.0  # monotonic: the first pass sweeps
        self._stop = threading.Event()
        self.folded = 0
        self.swept = 0  # orphaned upload files removed
        self.last_error: str | None = None  # of the last pass, None when it went through

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Fold until stopped or the followed process is gone; then fold what is left. Return the total."""
        while not self._stop.is_set() and self._followed_alive():
            if not self._pass():  # a backlog is folded batch after batch, without a pause
                self._stop.wait(self._every)
        # until nothing seen is left: a pass may fold no visit (files folded before a crash)
        while self._pass():
            pass
        return self.folded

    def _pass(self) -> bool:
        """The store's visit log, then a batch of spool files. Never raises; True when
        files it saw are still waiting (False too when the pass failed)."""
        folded = 0
        more = False
        try:
            folded += self._store.compact_visits()
            fold = self._spool.fold(self._store, self._clock.now())
            folded += fold.visits
            if fold.dropped:
                self._warn(f"dropped {fold.dropped} damaged visit lines in {self._spool.directory}")
            if folded:
                self._store.checkpoint()
            self.last_error = None
            more = fold.more
        except Exception as exc:  # the store may be down for a while: keep trying
            self.last_error = f"visit compaction failed: {type(exc).__name__}: {exc}"
            self._warn(self.last_error)
        self.folded += folded
        self._sweep_files()
        return more

    def _sweep_files(self) -> None:
        """Remove uploaded files no link uses (failed creates, deletes during an upload)."""
        now = self._clock.monotonic()
        if self._files is None or now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_SECONDS
        try:
            wall = self._clock.now().timestamp()  # files' ages are wall-clock mtimes
            self.swept += self._files.sweep_orphans(self._store.file_digests, now=wall)
        except Exception as exc:  # the store may be down: the next sweep tries again
            self._warn(f"sweeping orphaned files failed: {type(exc).__name__}: {exc}")

    def _followed_alive(self) -> bool:
        return self._follow_pid is None or is_process_running(self._follow_pid)
