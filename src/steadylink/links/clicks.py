"""Visits counted in memory and written to the store in batches.

``record`` is on the redirect's hot path: it appends one tuple to a deque and
does nothing else. ``flush`` (called by the app every
``links.click_flush_seconds``, default 1 s, and once more at shutdown) turns
the batch into ``Click`` rows — referrer *host* only, user-agent family and
bot flag — and appends them to the store's visit log, in transactions of a
few thousand visits, so the thread doing it never holds the interpreter for
long. The compactor (``links/compactor.py``) folds the log into totals and
stats within another ``links.compact_seconds``.

What can be lost: a worker killed with ``kill -9`` (or losing power) loses the
visits it recorded since its last flush — at most one flush interval of clicks
per worker, about one second by default. A graceful stop (SIGTERM) flushes.
If the store is unreachable, the batch is kept and retried at the next flush,
up to ``max_pending`` visits per worker; beyond that the oldest are dropped,
so a long database outage cannot exhaust memory. Visits of links with
``max_visits`` are counted exactly and at once by ``take_limited_visit``; the
batch only adds their per-day, referrer and agent figures.

The day a visit counts for is the day (UTC) at the previous flush: a visit a
second after midnight may count for the day before.
"""

from __future__ import annotations

import logging
from collections import deque
from urllib.parse import urlsplit

from steadylink.clock import Clock
from steadylink.links.agents import classify_agent
from steadylink.links.model import Click
from steadylink.links.store import Store

_log = logging.getLogger(__name__)

# Distinct (referrer, user agent) pairs remembered per worker.
_MEMO_LIMIT = 10_000


class BatchClickRecorder:
    """The ``ClickRecorder`` of one worker process."""

    def __init__(self, store: Store, clock: Clock, *, max_pending: int = 1_000_000) -> None:
        self._store = store
        self._clock = clock
        self._max_pending = max_pending
        # deque: append (event loop) and popleft (flush, another thread) are each
        # atomic, so the hot path takes no lock.
        self._pending: deque[Click] = deque()
        self._retry: list[Click] = []
        self._day = clock.now().date().isoformat()
        # (referrer, user agent) -> (day, referrer host, agent family, is bot)
        self._rest: dict[tuple[str | None, str | None], tuple[str, str, str, bool]] = {}

    def record(self, code: str, *, referrer: str | None, user_agent: str | None) -> None:
        # The row is made here rather than at the flush (a flush thread doing it
        # for a second's visits at once held the GIL for tens of ms, and every
        # redirect waited): one memoised lookup and a tuple.
        rest = self._rest.get((referrer, user_agent))
        if rest is None:
            rest = self._remember(referrer, user_agent)
        self._pending.append(tuple.__new__(Click, (code, *rest)))  # Click(...) costs twice this

    def _remember(self, referrer: str | None, user_agent: str | None) -> tuple[str, str, str, bool]:
        if len(self._rest) >= _MEMO_LIMIT:
            self._rest.clear()
        family, is_bot = classify_agent(user_agent)
        rest = self._rest[(referrer, user_agent)] = (self._day, referrer_host(referrer), family, is_bot)
        return rest

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._retry)

    def flush(self, limit: int | None = None) -> int:
        """Write what is pending (at most ``limit`` visits) in one transaction; return how many."""
        day = self._clock.now().date().isoformat()
        if day != self._day:
            self._day = day
            self._rest = {}  # its rows carry the day
        pending = self._pending
        popleft = pending.popleft
        batch = self._retry
        self._retry = []
        batch += [popleft() for _ in range(len(pending) if limit is None else min(len(pending), limit))]
        if not batch:
            return 0
        try:
            self._store.add_clicks(batch)
        except Exception:
            self._retry = batch[-self._max_pending :]
            _log.warning("click flush failed; %d visits kept for the next try", len(self._retry))
            raise
        return len(batch)


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
