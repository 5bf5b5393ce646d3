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

import os
import threading
from collections.abc import Callable
from pathlib import Path

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
        if self._follow_pid is None:
            return True
        try:
            os.kill(self._follow_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not _is_zombie(self._follow_pid)


def _is_zombie(pid: int) -> bool:
    """An exited process its parent has not reaped yet (Linux ``/proc``; elsewhere: no)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
