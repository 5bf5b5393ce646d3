"""The link cache on a real store (SQLite and PostgreSQL), with a FakeClock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import insert

from steadylink.clock import FakeClock
from steadylink.links import schema
from steadylink.links.cache import MemoryLinkCache
from steadylink.links.model import Link, LinkKind
from steadylink.links.sql_store import SqlStore, open_store


def _link(code: str, clock: FakeClock, **fields: object) -> Link:
    now = clock.now()
    return Link(code, LinkKind.URL, f"https://example.com/{code}", None, now, now, **fields)  # type: ignore[arg-type]


def test_a_plain_link_is_answered_from_memory_after_one_read(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(_link("abc", clock))
    cache = MemoryLinkCache(store, clock, size=10)
    assert cache.location("abc") is None  # not read yet
    assert cache.lookup("abc") is not None
    assert cache.location("abc") == cache.location("abc") == "https://example.com/abc"
    assert (cache.hits, cache.misses) == (2, 1)
    store.delete_link("abc")  # unseen until invalidated: the hit is pure memory
    assert cache.location("abc") is not None
    cache.invalidate("abc")
    assert cache.location("abc") is None


def test_other_links_are_kept_whole(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(_link("lim", clock, max_visits=5))
    cache = MemoryLinkCache(store, clock, size=10)
    assert cache.lookup("lim") == cache.lookup("lim")
    assert (cache.hits, cache.misses) == (1, 1)
    assert cache.location("lim") is None  # the redirect must count it in the store


def test_unicode_targets_are_kept_percent_encoded(store: SqlStore, clock: FakeClock) -> None:
    now = clock.now()
    store.insert_link(Link("uni", LinkKind.URL, "https://example.com/ä ö", None, now, now))
    cache = MemoryLinkCache(store, clock, size=10)
    cache.lookup("uni")
    assert cache.location("uni") == "https://example.com/%C3%A4%20%C3%B6"


def test_warm_loads_the_newest_plain_links_only(store: SqlStore, clock: FakeClock) -> None:
    for i in range(4):
        store.insert_link(_link(f"p{i}", clock))
        clock.advance(1)
    store.insert_link(_link("limited", clock, max_visits=3))
    store.insert_link(_link("expiring", clock, expires_at=clock.now() + timedelta(days=1)))
    store.insert_link(_link("locked", clock, password_hash="x"))
    store.insert_link(_link("off", clock, is_disabled=True))
    store.insert_link(_link("static", clock))  # a code that is a reserved word now
    cache = MemoryLinkCache(store, clock, size=3)
    assert cache.warm() == 3
    assert [c for c in ("p0", "p1", "p2", "p3") if cache.location(c)] == ["p1", "p2", "p3"]
    assert cache.warm() == 0  # full
    for code in ("limited", "expiring", "locked", "off", "static"):
        assert cache.location(code) is None


def test_a_change_made_while_warming_is_dropped_at_the_next_poll(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(_link("abc", clock))
    cache = MemoryLinkCache(store, clock, size=10)  # notes the change log's position
    store.replace_link(replace(_link("abc", clock), url="https://example.com/new"))
    cache.warm()
    cache.poll_invalidations()
    cache.lookup("abc")
    assert cache.location("abc") == "https://example.com/new"


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
    assert cache.location("a3") is not None
    assert cache.location("a1") is None  # evicted first


def test_another_workers_change_is_seen_at_the_next_poll(store: SqlStore, clock: FakeClock) -> None:
    """Two workers: two stores on one database, each with its own cache."""
    other = open_store(store.url)
    try:
        store.insert_link(_link("shared", clock))
        mine = MemoryLinkCache(store, clock, size=10)
        assert mine.lookup("shared") is not None
        other.replace_link(replace(_link("shared", clock), is_disabled=True))
        other.delete_link("gone-anyway")
        assert mine.location("shared") == "https://example.com/shared"  # not polled yet
        assert mine.poll_invalidations() >= 1
        assert mine.location("shared") is None
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


def test_an_idle_poll_drops_nothing(store: SqlStore, clock: FakeClock) -> None:
    """The overlap window is read again at every poll, but its rows drop a code once."""
    codes = [f"w{i:03d}" for i in range(100)]
    for code in codes:
        store.insert_link(_link(code, clock))  # 100 change-log rows, more than the overlap
    cache = MemoryLinkCache(store, clock, size=1000)
    assert cache.warm() == 100
    assert cache.poll_invalidations() == 0
    assert cache.poll_invalidations() == 0
    assert all(cache.location(code) for code in codes)
    store.replace_link(replace(_link("w050", clock), url="https://example.com/changed"))
    assert cache.poll_invalidations() == 1
    assert cache.poll_invalidations() == 0  # seen: not dropped again
    # the changed link was held, so the poll read it again: memory has its new target
    assert cache.location("w050") == "https://example.com/changed"
    assert all(cache.location(code) for code in codes)


def test_a_change_committed_after_a_later_one_is_still_seen(store: SqlStore, clock: FakeClock) -> None:
    """PostgreSQL may commit sequence number N after N+1 was read: the overlap catches it."""
    store.insert_link(_link("early", clock))
    store.insert_link(_link("late", clock))
    cache = MemoryLinkCache(store, clock, size=10)
    cache.lookup("early")
    cache.lookup("late")
    rows = store.changes_since(0)
    newest = rows[-1][0]
    with store.engine.begin() as conn:  # a change whose number is below one already seen
        conn.execute(
            insert(schema.link_changes).values(
                seq=newest + 2, code="late", at=clock.now().replace(tzinfo=None)
            )
        )
    assert cache.poll_invalidations() == 1
    with store.engine.begin() as conn:
        conn.execute(
            insert(schema.link_changes).values(
                seq=newest + 1, code="early", at=clock.now().replace(tzinfo=None)
            )
        )
    assert cache.poll_invalidations() == 1
    assert cache.poll_invalidations() == 0  # both rows seen now


def test_a_load_racing_an_invalidation_keeps_nothing(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(_link("race", clock))
    cache = MemoryLinkCache(store, clock, size=10)
    real_get = store.get_link

    def get_then_change(code: str) -> Link | None:
        found = real_get(code)
        cache.invalidate(code)  # another thread's change lands while this read was out
        return found

    store.get_link = get_then_change  # type: ignore[method-assign]
    assert cache.load("race") is not None
    assert cache.location("race") is None


def test_a_link_made_through_another_worker_is_held_here_after_one_poll(
    store: SqlStore, clock: FakeClock
) -> None:
    """Held in the worker that served it only, it once failed on the other in a database outage."""
    other = open_store(store.url)
    try:
        mine = MemoryLinkCache(store, clock, size=10)
        mine.poll_invalidations()
        expiring = _link("exp", clock, expires_at=clock.now() + timedelta(days=30))
        other.insert_link(expiring)
        other.insert_link(_link("plain", clock))
        mine.poll_invalidations()
        calls = store.get_link

        def silent(code: str) -> None:
            raise AssertionError(f"the store was asked for {code}")

        store.get_link = silent  # type: ignore[method-assign]
        held = mine.held("exp")
        assert isinstance(held, Link) and held.url == "https://example.com/exp"
        assert mine.location("plain") == "https://example.com/plain"
        store.get_link = calls  # type: ignore[method-assign]
    finally:
        other.close()
