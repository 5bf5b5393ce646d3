"""Links in memory, in front of the store, kept correct across workers.

Two plain dicts, not ``functools.lru_cache`` or ``cachetools``: a hit is one
``dict.get``, several times cheaper than either.

- ``_plain`` maps the code of every *plain* link (``links/plain.py``: a URL,
  no password, not disabled, no expiry, no visit limit) to its ``Location``
  value, already encoded. The redirect asks ``location(code)`` first: a hit
  answers at once.
- ``_links`` keeps every other link as a full ``Link`` (the redirect checks
  expiry, limits, passwords on it).

Both are bounded together by ``size`` entries; when full, the oldest entry of
the bigger dict goes (first in, first out). ``warm()`` fills ``_plain`` from
the store at start-up, newest links first, so a new worker (a canary, a
restarted release) serves from memory from its first request instead of
paying a store read (and a thread hand-off) per code. An entry costs about
200 bytes (code, URL and the dict's slot); ``links.cache_size`` is the bound,
and the README gives the measured memory of a warm worker.

Correctness rules:

- A change made through this worker is visible at once if the caller calls
  ``invalidate(code)``; a change made by *another* worker process (or host) is
  seen at the next ``poll_invalidations()`` — the app polls every
  ``links.invalidation_poll_seconds`` (default 1 s), so another worker's
  delete/disable/update takes effect everywhere within about one second.
  ``warm()`` reads the store *after* the cache noted the change log's position,
  so a change made while it reads is dropped at the next poll.
- Links with an ``expires_at`` are re-read from the store once expired, never
  served from memory past their expiry (the redirect resolves at every hit).
- Unknown codes are remembered for ``negative_seconds`` only, so a burst of
  requests for a missing code costs one store read, while a link created
  meanwhile in another worker is found within that time.
- Links with ``max_visits`` may sit here, but the redirect counts their visits
  in the store synchronously (``take_limited_visit``); the cached copy is only
  used to find the target.
- A poll drops only the codes of change-log rows it has not seen before. It
  re-reads the last ``_POLL_OVERLAP`` sequence numbers because on PostgreSQL a
  smaller number can commit after a larger one was read; the numbers already
  seen are remembered, so an idle poll drops nothing.
- A poll reads the links behind the codes it drops — the ones held here at
  once, and up to ``_READ_NEW_MAX`` others — so a link made or changed
  through another worker is held by every worker within a poll, and a
  database outage right after fails it on none of them.

Threads: reads (``location``, the memory part of ``lookup``) run on the event
loop without a lock; everything that reads the store (``load``,
``poll_invalidations``, ``warm``) is meant for a thread, and every change to
the dicts takes the one lock.
"""

from __future__ import annotations

import string
import threading
from urllib.parse import quote

from steadylink.clock import Clock
from steadylink.links.codes import RESERVED
from steadylink.links.model import Link
from steadylink.links.plain import is_plain
from steadylink.links.store import Store

# The change log is read with some overlap: on PostgreSQL a sequence number can
# commit after a larger one was already seen.
_POLL_OVERLAP = 64
# Changed codes a poll reads that this worker did not hold; the rest load on their next visit.
_READ_NEW_MAX = 256
__all__ = ["NOT_HELD", "MemoryLinkCache", "is_plain", "location_of"]

# What ``held`` says of a code whose answer is not in memory: ask ``load``.
NOT_HELD: object = object()


def location_of(url: str) -> str:
    """The ``Location`` header value for ``url``: ASCII, non-ASCII characters percent-encoded."""
    return url if url.isascii() else quote(url, safe=string.punctuation)


class MemoryLinkCache:
    """The ``LinkCache`` of one worker process."""

    def __init__(
        self, store: Store, clock: Clock, *, size: int, negative_seconds: float = 1.0
    ) -> None:
        self._store = store
        self._clock = clock
        self._size = max(size, 1)
        self._negative_seconds = negative_seconds
        self._plain: dict[str, str] = {}
        self._links: dict[str, Link] = {}
        self._missing: dict[str, float] = {}
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        # when each code was last invalidated (a counter): a load that read the store
        # before its code's invalidation keeps nothing; forgotten above a bound, then
        # every load begun before the forgetting counts as raced (``_floor``)
        self._counter = 0
        self._floor = 0
        self._changed: dict[str, int] = {}
        # the change log's position now; what is in its overlap window counts as seen
        changes = store.changes_since(0)
        self._seq = changes[-1][0] if changes else 0
        self._seen = {seq for seq, _ in changes if seq > self._seq - _POLL_OVERLAP}

    def location(self, code: str) -> str | None:
        """The redirect target of a plain link held in memory, else None (then call ``lookup``)."""
        found = self._plain.get(code)
        if found is not None:
            self.hits += 1
        return found

    def lookup(self, code: str) -> Link | None:
        """The link for ``code`` from memory, else from the store (then remembered)."""
        found = self.held(code)
        if found is NOT_HELD:
            return self.load(code)
        assert found is None or isinstance(found, Link)
        return found

    def held(self, code: str) -> Link | object | None:
        """The link for ``code`` (None: known missing) from memory alone, else ``NOT_HELD``.

        Never touches the store: the redirect calls it on the event loop and,
        on ``NOT_HELD``, runs ``load`` in a thread.
        """
        link = self._links.get(code)
        if link is not None:
            if link.expires_at is None or self._clock.now() < link.expires_at:
                self.hits += 1
                return link
            self._links.pop(code, None)
        else:
            deadline = self._missing.get(code)
            if deadline is not None:
                if self._clock.monotonic() < deadline:
                    self.hits += 1
                    return None
                self._missing.pop(code, None)
        return NOT_HELD

    def load(self, code: str) -> Link | None:
        """Read ``code`` from the store and remember the answer (a store call: not on the loop)."""
        self.misses += 1
        began = self._counter
        link = self._store.get_link(code)
        with self._lock:
            if self._changed_since(code, began):
                return link  # changed meanwhile: answer this once, remember nothing
            return self._remember(code, link)

    def _changed_since(self, code: str, began: int) -> bool:
        return self._changed.get(code, self._floor) > began

    def warm(self) -> int:
        """Fill the cache with the newest plain links, up to its size; return how many."""
        room = self._size - len(self)
        if room <= 0:
            return 0
        plain = self._plain
        added = 0
        # a code made reserved after it was created is never answered as a link:
        # skipped, so ask for as many more rows as there are reserved words
        for code, url in self._store.plain_links(room + len(RESERVED)):
            if code not in plain and code not in self._links and code.lower() not in RESERVED:
                with self._lock:
                    plain[code] = location_of(url)
                added += 1
                if added == room:
                    break
        return added

    def invalidate(self, code: str) -> None:
        with self._lock:
            self._counter += 1
            if len(self._changed) >= 100_000:
                self._changed.clear()
                self._floor = self._counter
            self._changed[code] = self._counter
            self._plain.pop(code, None)
            self._links.pop(code, None)
            self._missing.pop(code, None)

    def poll_invalidations(self) -> int:
        """Drop every code changed in the store since the last poll; return how many.

        Only rows not seen by an earlier poll count: the overlap window is read
        again, but its known rows drop nothing (module docstring). A changed
        link that was held is read again at once (the poll runs in a thread), so
        a change — or a link's own creation, seen after its first visit — does not
        leave it out of memory until its next visit, when the store might not answer.
        """
        since = max(self._seq - _POLL_OVERLAP, 0)
        changes = self._store.changes_since(since)
        seen = self._seen
        dropped = []
        for seq, code in changes:
            if seq in seen or seq <= since:
                continue
            seen.add(seq)
            dropped.append(code)
            if seq > self._seq:
                self._seq = seq
        floor = self._seq - _POLL_OVERLAP
        if len(seen) > 2 * _POLL_OVERLAP or any(s <= floor for s in seen):
            self._seen = {s for s in seen if s > floor}
        held = [code for code in dropped if code in self._plain or code in self._links]
        # Codes this worker never held are read too (a bounded number a poll): a link
        # made or changed through another worker is then held here within a poll,
        # so a database outage right after does not fail it on this worker alone.
        others = [code for code in dict.fromkeys(dropped) if code not in held][:_READ_NEW_MAX]
        for code in dropped:
            self.invalidate(code)
        for code in (*held, *others):
            self._refresh(code)
        return len(dropped)

    def _refresh(self, code: str) -> None:
        began = self._counter
        link = self._store.get_link(code)
        with self._lock:
            if link is not None and not self._changed_since(code, began):
                self._remember(code, link)

    def __len__(self) -> int:
        return len(self._plain) + len(self._links)

    def _remember(self, code: str, link: Link | None) -> Link | None:
        if link is None:
            if len(self._missing) >= self._size:
                self._missing.clear()
            self._missing[code] = self._clock.monotonic() + self._negative_seconds
            return None
        if link.expires_at is not None and self._clock.now() >= link.expires_at:
            return link  # expired: answered (410) but not kept
        if len(self) >= self._size:
            fuller: dict[str, str] | dict[str, Link]
            fuller = self._plain if len(self._plain) >= len(self._links) else self._links
            fuller.pop(next(iter(fuller)), None)
        if is_plain(link):
            assert link.url is not None  # is_plain checked it
            self._plain[code] = location_of(link.url)
        else:
            self._links[code] = link
        return link
