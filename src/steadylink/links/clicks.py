"""Visits counted in memory and written to the visit spool in batches.

``record`` is on the redirect's hot path: one memoised lookup, one string
concatenation, one list append. ``take`` (on the event loop, every
``links.click_flush_seconds``, default 1 s, and once more at shutdown) hands
the batch over and ``write`` (in a thread) writes it as one spool file
(``links/spool.py``): referrer *host* only, user-agent family and bot flag.
The compactor folds the file into totals and stats within another
``links.compact_seconds``. The worker never talks to the database for a visit.

What can be lost: a worker killed with ``kill -9`` loses the visits it
recorded since its last flush — at most one flush interval of clicks per
worker, about one second by default. A graceful stop (SIGTERM) flushes.
Written files are in the operating system's page cache at once, so a
crashed worker loses nothing it wrote; a power loss can lose what was not
on disk yet. If the spool cannot be written (disk full), the batch is kept
and retried at the next flush, up to ``max_pending`` visits per worker;
beyond that the oldest are dropped, so a long outage cannot exhaust memory.
Visits of links with ``max_visits`` are counted exactly and at once by
``take_limited_visit``; the spool only adds their per-day, referrer and agent
figures.

The day a visit counts for is the day (UTC) at the previous flush: a visit a
second after midnight may count for the day before.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from steadylink.clock import Clock
from steadylink.links.agents import classify_agent
from steadylink.links.spool import VisitSpool, visit_line_tail

# Distinct (referrer, user agent) pairs remembered per worker.
_MEMO_LIMIT = 10_000


class BatchClickRecorder:
    """The ``ClickRecorder`` of one worker process.

    ``record`` and ``take`` run on the event loop; ``write`` may run in a thread.
    Codes come from the store, so they never hold a tab or a newline.
    """

    def __init__(self, spool: VisitSpool, clock: Clock, *, max_pending: int = 1_000_000) -> None:
        self.spool = spool
        self._clock = clock
        self._max_pending = max_pending
        self._pending: list[str] = []
        self._retry: list[str] = []
        self._day = clock.now().date().isoformat()
        # (referrer, user agent) -> the visit line after its code
        self._rest: dict[tuple[str | None, str | None], str] = {}

    def record(self, code: str, *, referrer: str | None, user_agent: str | None) -> None:
        rest = self._rest.get((referrer, user_agent))
        if rest is None:
            rest = self._remember(referrer, user_agent)
        self._pending.append(code + rest)

    def _remember(self, referrer: str | None, user_agent: str | None) -> str:
        if len(self._rest) >= _MEMO_LIMIT:
            self._rest.clear()
        family, is_bot = classify_agent(user_agent)
        rest = self._rest[(referrer, user_agent)] = visit_line_tail(
            self._day, referrer_host(referrer), family, is_bot
        )
        return rest

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._retry)

    def take(self) -> list[str]:
        """The visits recorded since the last take (and any a failed write kept)."""
        day = self._clock.now().date().isoformat()
        if day != self._day:
            self._day = day
            self._rest = {}  # its lines carry the day
        batch, self._pending = self._pending, []
        if self._retry:
            batch, self._retry = self._retry + batch, []
        return batch

    def write(self, batch: list[str]) -> int:
        """Write ``batch`` (from ``take``) as one spool file; return how many visits."""
        if not batch:
            return 0
        try:
            self.spool.write("".join(batch))
        except Exception:
            self._retry = batch[-self._max_pending :]  # take() emptied it
            raise
        return len(batch)

    def flush(self) -> int:
        """``take`` and ``write`` at once (at shutdown, and in tests)."""
        return self.write(self.take())


def referrer_host(referrer: str | None) -> str:
    """The host of a Referer header, lower-case; ``""`` when absent or unreadable.

    Not memoised here: the recorder remembers it with the user agent's class.
    """
    if not referrer:
        return ""
    try:
        return (urlsplit(referrer).hostname or "")[:255]
    except ValueError:
        return ""
