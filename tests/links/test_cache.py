"""The link cache on a real store (SQLite and PostgreSQL), with a FakeClock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from steadylink.clock import FakeClock
from steadylink.links.cache import MemoryLinkCache
from steadylink.links.model import Link, LinkKind
from steadylink.links.sql_store import SqlStore, open_store


def _link(code: str, clock: FakeClock, **fields: object) -> Link:
    now = clock.now()
    return Link(code, LinkKind.URL, f"https://example.com/{code}", None, now, now, **fields)  # type: ignore[arg-type]


def test_a_hit_needs_no_store_read(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(_link("abc", clock))
    cache = MemoryLinkCache(store, clock, size=10)
    assert cache.lookup("abc") == cache.lookup("abc")
    assert (cache.hits, cache.misses) == (1, 1)
    store.delete_link("abc")  # unseen until invalidated: the hit is pure memory
    assert cache.lookup("abc") is not None


def test_unknown_codes_are_remembered_briefly(store: SqlStore, clock: FakeClock) -> None:
    cache = MemoryLinkCache(store, clock, size=10, negative_seconds=1.0)
    assert cache.lookup("later") is None
    store.insert_link(_link("later", clock))
    assert cache.lookup("later") is None  # the remembered miss
    clock.advance(1.0)
    assert cache.lookup("later") is not None


def test_invalidate_forgets_at_once(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(_link("abc", clock))
    cache = MemoryLinkCache(store, clock, size=10)
    cache.lookup("abc")
    store.replace_link(replace(_link("abc", clock), is_disabled=True))
    cache.invalidate("abc")
    found = cache.lookup("abc")
    assert found is not None and found.is_disabled


def test_expired_links_are_reread_not_kept(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(_link("soon", clock, expires_at=clock.now() + timedelta(seconds=10)))
    cache = MemoryLinkCache(store, clock, size=10)
    assert cache.lookup("soon") is not None and len(cache) == 1
    clock.advance(10)
    found = cache.lookup("soon")
    assert found is not None and found.is_expired(clock.now())
    assert len(cache) == 0


def test_full_cache_evicts_the_oldest(store: SqlStore, clock: FakeClock) -> None:
    for code in ("a1", "a2", "a3"):
        store.insert_link(_link(code, clock))
    cache = MemoryLinkCache(store, clock, size=2)
    for code in ("a1", "a2", "a3"):
        cache.lookup(code)
    assert len(cache) == 2
    misses = cache.misses
    cache.lookup("a3")
    cache.lookup("a1")
    assert cache.misses == misses + 1


def test_another_workers_change_is_seen_at_the_next_poll(store: SqlStore, clock: FakeClock) -> None:
    """Two workers: two stores on one database, each with its own cache."""
    other = open_store(store.url)
    try:
        store.insert_link(_link("shared", clock))
        mine = MemoryLinkCache(store, clock, size=10)
        assert mine.lookup("shared") is not None
        other.replace_link(replace(_link("shared", clock), is_disabled=True))
        other.delete_link("gone-anyway")
        cached = mine.lookup("shared")
        assert cached is not None and not cached.is_disabled  # not polled yet
        assert mine.poll_invalidations() >= 1
        found = mine.lookup("shared")
        assert found is not None and found.is_disabled
        other.delete_link("shared")
        mine.poll_invalidations()
        assert mine.lookup("shared") is None
    finally:
        other.close()


def test_a_used_up_limited_link_leaves_the_cache(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(_link("once", clock, max_visits=1))
    cache = MemoryLinkCache(store, clock, size=10)
    assert cache.lookup("once") is not None
    assert store.take_limited_visit("once")
    cache.poll_invalidations()
    found = cache.lookup("once")
    assert found is not None and found.is_used_up()
