"""Links in memory, in front of the store, kept correct across workers.

Two plain dicts, not ``functools.lru_cache`` or ``cachetools``: a hit is one
``dict.get`` (36 ns, PERF-NOTES.md).

- ``_plain`` maps the code of every *plain* link — a URL, no password, not
  disabled, no expiry, no visit limit — to its ``Location`` value, already
  encoded. The redirect asks ``location(code)`` first: a hit answers at once.
- ``_links`` keeps every other link as a full ``Link`` (the redirect checks
  expiry, limits, passwords on it).

Both are bounded together by ``size`` entries; when full, the oldest entry of
the bigger dict goes (first in, first out). ``warm()`` fills ``_plain`` from
the store at start-up, newest links first, so a new worker (a canary, a
restarted release) serves from memory from its first request instead of
paying a store read per code (6-8 µs on SQLite, PERF-NOTES.md). An entry costs
about 200 bytes (code, URL and the dict's slot): 1,000,000 plain links take
about 200 MB per worker (measured: 88 MB for an empty worker, 290 MB warm);
``links.cache_size`` is the bound.

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
"""

from __future__ import annotations

import string
from urllib.parse import quote

from steadylink.clock import Clock
from steadylink.links.codes import RESERVED
from steadylink.links.model import Link
from steadylink.links.plain import is_plain  # one rule for cache, store and edge map
from steadylink.links.store import Store

__all__ = ["MemoryLinkCache", "is_plain", "location_of"]

# The change log is read with some overlap: on PostgreSQL a sequence number can
# commit after a larger one was already seen; dropping a code twice is harmless.
_POLL_OVERLAP = 64


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
        self._seq, _ = store.invalidations_since(0)

    def location(self, code: str) -> str | None:
        """The redirect target of a plain link held in memory, else None (then call ``lookup``)."""
        found = self._plain.get(code)
        if found is not None:
            self.hits += 1
        return found

    def lookup(self, code: str) -> Link | None:
        """The link for ``code`` from memory, else from the store (then remembered)."""
        link = self._links.get(code)
        if link is not None:
            if link.expires_at is None or self._clock.now() < link.expires_at:
                self.hits += 1
                return link
            del self._links[code]
        else:
            deadline = self._missing.get(code)
            if deadline is not None:
                if self._clock.monotonic() < deadline:
                    self.hits += 1
                    return None
                del self._missing[code]
        self.misses += 1
        return self._load(code)

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
                plain[code] = location_of(url)
                added += 1
                if added == room:
                    break
        return added

    def invalidate(self, code: str) -> None:
        self._plain.pop(code, None)
        self._links.pop(code, None)
        self._missing.pop(code, None)

    def poll_invalidations(self) -> int:
        """Drop every code changed in the store since the last poll; return how many."""
        seq, codes = self._store.invalidations_since(max(self._seq - _POLL_OVERLAP, 0))
        self._seq = max(seq, self._seq)
        for code in codes:
            self.invalidate(code)
        return len(codes)

    def __len__(self) -> int:
        return len(self._plain) + len(self._links)

    def _load(self, code: str) -> Link | None:
        link = self._store.get_link(code)
        if link is None:
            if len(self._missing) >= self._size:
                self._missing.clear()
            self._missing[code] = self._clock.monotonic() + self._negative_seconds
            return None
        if link.expires_at is not None and self._clock.now() >= link.expires_at:
            return link  # expired: answered (410) but not kept
        if len(self) >= self._size:
            fuller = self._plain if len(self._plain) >= len(self._links) else self._links
            del fuller[next(iter(fuller))]
        if is_plain(link):
            assert link.url is not None  # is_plain checked it
            self._plain[code] = location_of(link.url)
        else:
            self._links[code] = link
        return link
