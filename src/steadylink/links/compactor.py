"""The visit compactor: folds the visit log into totals and stats, off the workers.

A worker's click flush only *appends* its visits to ``visit_log`` (~1 µs a
visit). Folding them into ``links.visits`` and the per-day, referrer and
agent tables costs more — ~20 µs a visit when the worker did it itself, on
the core that serves redirects — so it is done here, in a process of its own
that ``steadylink serve`` starts beside granian: every
``links.compact_seconds`` (default 1 s) it folds what was logged, up to
50,000 visits per transaction.

So a visit shows in the stats within about two seconds: the worker's flush
(≤ 1 s) plus the next compaction (≤ 1 s). Visits of links with
``max_visits`` are counted in the store before the redirect, as before.

The compactor follows the PID it was started for (``serve`` passes its own,
which granian keeps when it replaces the process): when that process is gone,
or on SIGTERM, it folds what is left and exits. Several compactors on one
database (a canary and the stable release, several hosts) are safe — SQLite's
write lock, or a PostgreSQL advisory lock, lets one fold at a time, and each
visit is folded exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from steadylink.edge.process import is_process_running
from steadylink.links.store import Store

Warn = Callable[[str], None]


class Compactor:
    def __init__(
        self, store: Store, *, every: float, follow_pid: int | None = None, warn: Warn | None = None
    ) -> None:
        self._store = store
        self._every = every
        self._follow_pid = follow_pid
        self._warn = warn or (lambda _message: None)
        self._stop = threading.Event()
        self.folded = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> int:
        """Fold until stopped or the followed process is gone; then fold once more. Return the total."""
        while not self._stop.is_set() and self._followed_alive():
            self._fold()
            self._stop.wait(self._every)
        self._fold()
        return self.folded

    def _fold(self) -> None:
        try:
            self.folded += self._store.compact_visits()
        except Exception as exc:  # the store may be down for a while: keep trying
            self._warn(f"visit compaction failed: {type(exc).__name__}: {exc}")

    def _followed_alive(self) -> bool:
        return self._follow_pid is None or is_process_running(self._follow_pid)
