"""The store suite: every test runs on SQLite and on the real PostgreSQL server."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import Conflict, NotFound, StoreError
from steadylink.links.codes import SystemRandom
from steadylink.links.model import Click, Link, LinkKind, NewLink
from steadylink.links.service import create_link
from steadylink.links.sql_store import SqlStore, open_store
from steadylink.settings import Settings


def make(code: str, clock: FakeClock, url: str = "https://example.com/", **kw: object) -> Link:
    return Link(code, LinkKind.URL, url, None, clock.now(), clock.now(), **kw)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(store: SqlStore, clock: FakeClock) -> None:
    link = make(
        "full",
        clock,
        expires_at=clock.now() + timedelta(days=1),
        max_visits=3,
        is_disabled=True,
        password_hash="h",
        owner="k1",
    )
    store.insert_link(link)
    assert store.get_link("full") == link
    assert store.get_link("FULL") is None  # exact code on resolve


def test_codes_differing_only_in_case_conflict(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("Abc", clock))
    with pytest.raises(Conflict):
        store.insert_link(make("aBC", clock))


def test_list_filters_and_pages_newest_first(store: SqlStore, clock: FakeClock) -> None:
    for i in range(5):
        store.insert_link(make(f"c{i}", clock, url=f"https://site{i}.example/"))
        clock.advance(60)
    page = store.list_links(limit=2, offset=1)
    assert [link.code for link in page.links] == ["c3", "c2"] and page.total == 5
    assert [link.code for link in store.list_links(text="SITE4").links] == ["c4"]
    assert store.list_links(text="100%").total == 0
    start = clock.now() - timedelta(seconds=150)
    assert {link.code for link in store.list_links(created_from=start).links} == {"c3", "c4"}
    assert [link.code for link in store.iter_links()] == [f"c{i}" for i in range(5)]


def test_replace_and_delete_note_changes(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("x", clock))
    seq0, _ = store.invalidations_since(0)
    with pytest.raises(NotFound):
        store.replace_link(make("missing", clock))
    store.replace_link(make("x", clock, url="https://changed.example/"))
    seq1, codes = store.invalidations_since(seq0)
    assert codes == ["x"] and seq1 > seq0
    assert store.delete_link("x") and not store.delete_link("x")
    assert store.invalidations_since(seq1)[1] == ["x"]


def test_clicks_aggregate_into_stats(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("s", clock))
    store.insert_link(make("lim", clock, max_visits=10))
    day = date(2026, 1, 1)
    clicks = [Click("s", day.isoformat(), "news.example", "Firefox", False)] * 3 + [
        Click("s", (day + timedelta(days=1)).isoformat(), "", "Googlebot", True),
        Click("lim", day.isoformat(), "", "curl", False),
    ]
    store.add_clicks(clicks)
    store.add_clicks([Click("s", day.isoformat(), "news.example", "Firefox", False)])
    assert store.link_stats("s").total == 0  # logged, not folded yet
    assert store.compact_visits() == 6
    assert store.compact_visits() == 0
    stats = store.link_stats("s")
    assert stats.total == 5
    assert stats.per_day == {"2026-01-01": 4, "2026-01-02": 1}
    assert stats.referrers == {"news.example": 4, "": 1}
    assert (stats.bots, stats.humans) == (1, 4)
    limited = store.get_link("lim")
    assert limited is not None and limited.visits == 0  # counted only by take_limited_visit
    store.add_clicks([])


def test_compaction_goes_in_batches_and_adds_up(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("s", clock))
    day = date(2026, 1, 1)
    store.add_clicks([Click("s", day.isoformat(), f"h{i % 3}.example", "Firefox", False) for i in range(7)])
    store.compact_visits()
    store.add_clicks([Click("s", day.isoformat(), "h0.example", "curl", False)] * 5)
    assert store.compact_visits(batch=2) == 5
    stats = store.link_stats("s")
    assert stats.total == 12 and stats.per_day == {"2026-01-01": 12}
    assert stats.referrers == {"h0.example": 8, "h1.example": 2, "h2.example": 2}
    assert stats.agents == {"Firefox": 7, "curl": 5}


def test_visits_of_a_deleted_link_leave_no_stats_behind(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("gone", clock))
    day = date(2026, 1, 1)
    store.add_clicks([Click("gone", day.isoformat(), "", "curl", False)])
    store.delete_link("gone")
    store.add_clicks([Click("gone", day.isoformat(), "", "curl", False)])  # a worker flushed late
    store.compact_visits()
    store.insert_link(make("gone", clock))  # the code is reused
    assert store.link_stats("gone").total == 0 and store.link_stats("gone").per_day == {}


def test_compactors_running_at_once_count_each_visit_once(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("busy", clock))
    day = date(2026, 1, 1)
    for _ in range(20):
        store.add_clicks([Click("busy", day.isoformat(), "", "curl", False)] * 50)
    stores = [open_store(store.url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            folded = sum(pool.map(lambda s: s.compact_visits(batch=100), stores))
    finally:
        for other in stores:
            other.close()
    assert folded == 1000
    assert store.link_stats("busy").total == 1000


def test_limited_visits_are_exact_under_concurrency(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("five", clock, max_visits=5))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.take_limited_visit("five"), range(20)))
    assert results.count(True) == 5
    link = store.get_link("five")
    assert link is not None and link.visits == 5


def test_concurrent_generated_creates_all_succeed(store: SqlStore, settings: Settings) -> None:
    short = settings.with_overrides()
    clock = FakeClock()

    def one(i: int) -> str:
        return create_link(
            store=store,
            settings=short,
            clock=clock,
            rng=SystemRandom(),
            new=NewLink(url=f"https://example.com/{i}"),
        ).code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(60)))
    assert len(set(codes)) == 60 and store.count_links() == 60


def test_sample_codes_spreads_over_the_table(store: SqlStore, clock: FakeClock) -> None:
    assert store.sample_codes(10) == []
    for i in range(100):
        store.insert_link(make(f"k{i:03d}", clock))
    sample = store.sample_codes(10)
    assert len(sample) == 10 and len(set(sample)) == 10
    assert sample[0] == "k000" and sample[-1] >= "k090"


def test_unreachable_database_is_a_store_error() -> None:
    down = open_store("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="not answering"):
        down.ping()
    with pytest.raises(StoreError, match="not a database URL|Unsupported"):
        open_store("mysql://x")
