"""Hot codes in memory, in front of the store, kept correct across workers.

A plain dict, not ``functools.lru_cache`` or ``cachetools``: a hit is one
``dict.get`` (36 ns, PERF-NOTES.md). Eviction is first-in-first-out when the
cache is full; a hit costs nothing extra, and a code evicted while still hot
is read back from the store (7-10 µs on SQLite) and re-inserted at the end.

Correctness rules:

- A change made through this worker is visible at once if the caller calls
  ``invalidate(code)``; a change made by *another* worker process (or host) is
  seen at the next ``poll_invalidations()`` — the app polls every
  ``links.invalidation_poll_seconds`` (default 1 s), so another worker's
  delete/disable/update takes effect everywhere within about one second.
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

from steadylink.clock import Clock
from steadylink.links.model import Link
from steadylink.links.store import Store

# The change log is read with some overlap: on PostgreSQL a sequence number can
# commit after a larger one was already seen; dropping a code twice is harmless.
_POLL_OVERLAP = 64


class MemoryLinkCache:
    """The ``LinkCache`` of one worker process."""

    def __init__(
        self, store: Store, clock: Clock, *, size: int, negative_seconds: float = 1.0
    ) -> None:
        self._store = store
        self._clock = clock
        self._size = max(size, 1)
        self._negative_seconds = negative_seconds
        self._links: dict[str, Link] = {}
        self._missing: dict[str, float] = {}
        self.hits = 0
        self.misses = 0
        self._seq, _ = store.invalidations_since(0)

    def lookup(self, code: str) -> Link | None:
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

    def invalidate(self, code: str) -> None:
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
        return len(self._links)

    def _load(self, code: str) -> Link | None:
        link = self._store.get_link(code)
        if link is None:
            if len(self._missing) >= self._size:
                self._missing.clear()
            self._missing[code] = self._clock.monotonic() + self._negative_seconds
            return None
        if link.expires_at is not None and self._clock.now() >= link.expires_at:
            return link  # expired: answered (410) but not kept
        if len(self._links) >= self._size:
            del self._links[next(iter(self._links))]
        self._links[code] = link
        return link
