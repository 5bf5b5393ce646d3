"""Prometheus metrics of one app, labelled with the release id.

Every metric lives in a registry of its own app (tests build many apps in one
process). With ``PROMETHEUS_MULTIPROC_DIR`` set (several granian workers),
prometheus-client writes each value to a memory-mapped file in that directory
and ``/metrics`` sums the files of all workers; the directory must exist and
be emptied before the workers start (the release's start-up does that).

Hot path: labelled children are looked up once and kept in a dict keyed by
``(route, method, status)``, because ``.labels()`` costs a few µs per call.
Cache hits and misses are read from the cache's own counters when flushed,
so a lookup pays nothing for them.
"""

from __future__ import annotations

import os

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
        self._children: dict[_ChildKey, tuple[Counter, Histogram]] = {}
        self._seen_hits = 0
        self._seen_misses = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request; cheap after the first request of a (route, method, status)."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status), self.release),
                self.duration.labels(route, method, self.release),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def sync_cache_counts(self, hits: int, misses: int) -> None:
        """Add what the cache counted since the last call (counters only go up)."""
        if hits > self._seen_hits:
            self.cache_hits.inc(hits - self._seen_hits)
        if misses > self._seen_misses:
            self.cache_misses.inc(misses - self._seen_misses)
        self._seen_hits, self._seen_misses = hits, misses

    def render(self) -> bytes:
        """The Prometheus text exposition of this worker, or of all workers in multiprocess mode."""
        if self.is_multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
