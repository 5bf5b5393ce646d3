"""Prometheus metrics of one app, labelled with the release id.

Every metric lives in a registry of its own app (tests build many apps in one
process). With ``PROMETHEUS_MULTIPROC_DIR`` set (several granian workers),
prometheus-client writes each value to a memory-mapped file in that directory
and ``/metrics`` sums the files of all workers; the directory must exist and
be emptied before the workers start (the release's start-up does that).

Hot path: a request adds to plain Python numbers per ``(route, method,
status)``; ``fold()`` moves them into the prometheus-client metrics (through
labelled children looked up once) every flush interval (1 s) and at every
scrape, so a worker's figures lag by at most about a second. Cache hits and
misses are read from the cache's own counters the same way.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Redirects answer in tens of µs, API calls in ms: buckets cover both.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_ChildKey = tuple[str, str, int]


class AppMetrics:
    def __init__(self, release: str) -> None:
        self.release = release
        self.registry = CollectorRegistry(auto_describe=True)
        self.is_multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        reg = self.registry
        self.requests = Counter(
            "steadylink_http_requests", "HTTP requests by route template, method and status.",
            ["route", "method", "status", "release"], registry=reg,
        )
        self.duration = Histogram(
            "steadylink_http_request_duration_seconds", "Time from request to last byte.",
            ["route", "method", "release"], buckets=_BUCKETS, registry=reg,
        )
        self.redirects = Counter(
            "steadylink_redirects", "Redirects answered.", ["release"], registry=reg
        ).labels(release)
        self.links_created = Counter(
            "steadylink_links_created", "Links created (API or form).", ["release"], registry=reg
        ).labels(release)
        self.cache_hits = Counter(
            "steadylink_cache_hits", "Link cache hits.", ["release"], registry=reg
        ).labels(release)
        self.cache_misses = Counter(
            "steadylink_cache_misses", "Link cache misses.", ["release"], registry=reg
        ).labels(release)
        self._children: dict[_ChildKey, tuple[Any, Any]] = {}
        self._pending: dict[_ChildKey, list[Any]] = {}
        self._pending_redirects = 0
        self._seen_hits = 0
        self._seen_misses = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request in plain Python numbers; ``fold`` hands them to prometheus-client.

        A Counter.inc plus a Histogram.observe take four locked updates (~3 µs);
        this takes a dict lookup, two additions and a bisect.
        """
        pending = self._pending.get((route, method, status))
        if pending is None:
            pending = self._pending[(route, method, status)] = [0, 0.0, [0] * (len(_BUCKETS) + 1)]
        pending[0] += 1
        pending[1] += seconds
        pending[2][bisect_left(_BUCKETS, seconds)] += 1

    def count_redirect(self) -> None:
        self._pending_redirects += 1

    def fold(self) -> None:
        """Move the pending counts into the metrics (every flush interval and at each scrape)."""
        pending, self._pending = self._pending, {}
        for key, (count, total, buckets) in pending.items():
            counter, histogram = self._child(key)
            counter.inc(count)
            # prometheus-client has no public call to add many observations at once;
            # its per-bucket values are what observe() itself updates.
            histogram._sum.inc(total)
            for i, n in enumerate(buckets):
                if n:
                    histogram._buckets[i].inc(n)
        if self._pending_redirects:
            self.redirects.inc(self._pending_redirects)
            self._pending_redirects = 0

    def _child(self, key: _ChildKey) -> tuple[Any, Any]:
        children = self._children.get(key)
        if children is None:
            route, method, status = key
            children = (
                self.requests.labels(route, method, str(status), self.release),
                self.duration.labels(route, method, self.release),
            )
            self._children[key] = children
        return children

    def sync_cache_counts(self, hits: int, misses: int) -> None:
        """Add what the cache counted since the last call (counters only go up)."""
        if hits > self._seen_hits:
            self.cache_hits.inc(hits - self._seen_hits)
        if misses > self._seen_misses:
            self.cache_misses.inc(misses - self._seen_misses)
        self._seen_hits, self._seen_misses = hits, misses

    def render(self) -> bytes:
        """The Prometheus text exposition of this worker, or of all workers in multiprocess mode."""
        self.fold()
        if self.is_multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
