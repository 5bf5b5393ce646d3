"""The store suite: every test runs on SQLite and on the real PostgreSQL server."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from sqlalchemy import insert

from steadylink.clock import FakeClock
from steadylink.errors import Conflict, NotFound, StoreError
from steadylink.links import schema
from steadylink.links.bounded import BoundedConnection
from steadylink.links.codes import SystemRandom
from steadylink.links.model import Link, LinkKind, NewLink, VisitRow
from steadylink.links.service import create_link
from steadylink.links.sql_store import PG_CONNECT_TIMEOUT, SqlStore, open_store
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


def test_insert_links_skips_taken_codes_and_notes_the_rest(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("Abc", clock))
    seq0, _ = store.invalidations_since(0)
    batch = [make("x1", clock), make("aBC", clock), make("x2", clock), make("X2", clock)]
    assert store.insert_links(batch) == [True, False, True, False]
    assert store.insert_links([]) == []
    _, changed = store.invalidations_since(seq0)
    assert sorted(changed) == ["x1", "x2"]
    assert store.get_link("Abc") == make("Abc", clock)  # the taken code's link is untouched


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


def _visit(code: str, day: date, host: str = "", family: str = "curl", bot: bool = False, n: int = 1) -> VisitRow:
    return VisitRow(code, day.isoformat(), host, family, bot, n)


def _logged_by_an_older_release(store: SqlStore, rows: list[VisitRow]) -> None:
    """Visit log rows as releases before the spool appended them: no ``n``, one visit each."""
    with store.engine.begin() as conn:
        conn.execute(
            insert(schema.visit_log),
            [{"code": r.code, "day": r.day, "host": r.referrer_host, "family": r.agent_family,
              "is_bot": r.is_bot} for r in rows],
        )  # fmt: skip


def test_folded_visits_add_up_into_stats(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("s", clock))
    store.insert_link(make("lim", clock, max_visits=10))
    day = date(2026, 1, 1)
    rows = [
        _visit("s", day, "news.example", "Firefox", n=3),
        _visit("s", day + timedelta(days=1), "", "Googlebot", bot=True),
        _visit("lim", day),
    ]
    assert store.fold_visits(["f1"], rows, at=clock.now()) == set()
    assert store.fold_visits(["f2"], [_visit("s", day, "news.example", "Firefox")], at=clock.now()) == set()
    stats = store.link_stats("s")
    assert stats.total == 5
    assert stats.per_day == {"2026-01-01": 4, "2026-01-02": 1}
    assert stats.referrers == {"news.example": 4, "": 1}
    assert stats.agents == {"Firefox": 4, "Googlebot": 1}
    assert (stats.bots, stats.humans) == (1, 4)
    limited = store.get_link("lim")
    assert limited is not None and limited.visits == 0  # counted only by take_limited_visit
    assert store.link_stats("lim").per_day == {"2026-01-01": 1}


def test_a_file_is_folded_once_until_it_is_forgotten(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("s", clock))
    day = date(2026, 1, 1)
    assert store.fold_visits(["f1"], [_visit("s", day, n=2)], at=clock.now()) == set()
    # a compactor that died before deleting f1 reads it again, with a new file
    assert store.fold_visits(["f1", "f2"], [_visit("s", day, n=7)], at=clock.now()) == {"f1"}
    assert store.link_stats("s").total == 2  # nothing of that batch was folded
    assert store.fold_visits(["f2"], [_visit("s", day, n=5)], forget=["f1"], at=clock.now()) == set()
    assert store.fold_visits(["f1"], [_visit("s", day)], at=clock.now()) == set()  # f1 was forgotten
    assert store.link_stats("s").total == 8


def test_names_left_unforgotten_expire_after_thirty_days(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("s", clock))
    day = date(2026, 1, 1)
    store.fold_visits(["old"], [_visit("s", day)], at=clock.now())
    store.fold_visits([], [], at=clock.now() + timedelta(days=29))
    assert store.fold_visits(["old"], [_visit("s", day)], at=clock.now()) == {"old"}
    store.fold_visits([], [], at=clock.now() + timedelta(days=31))
    assert store.fold_visits(["old"], [_visit("s", day)], at=clock.now()) == set()


def test_rows_an_older_release_logged_are_folded_in_batches(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("s", clock))
    day = date(2026, 1, 1)
    _logged_by_an_older_release(store, [_visit("s", day, f"h{i % 3}.example", "Firefox") for i in range(7)])
    assert store.link_stats("s").total == 0  # logged, not folded yet
    assert store.compact_visits() == 7
    assert store.compact_visits() == 0
    _logged_by_an_older_release(store, [_visit("s", day, "h0.example")] * 5)
    assert store.compact_visits(batch=2) == 5
    stats = store.link_stats("s")
    assert stats.total == 12 and stats.per_day == {"2026-01-01": 12}
    assert stats.referrers == {"h0.example": 8, "h1.example": 2, "h2.example": 2}
    assert stats.agents == {"Firefox": 7, "curl": 5}
    # a fold of spool files takes any logged rows with it
    _logged_by_an_older_release(store, [_visit("s", day)])
    store.fold_visits(["f1"], [_visit("s", day, n=2)], at=clock.now())
    assert store.link_stats("s").total == 15


def test_visits_of_a_deleted_link_leave_no_stats_behind(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("gone", clock))
    day = date(2026, 1, 1)
    _logged_by_an_older_release(store, [_visit("gone", day)])
    store.delete_link("gone")
    _logged_by_an_older_release(store, [_visit("gone", day)])  # a worker flushed late
    store.fold_visits(["late"], [_visit("gone", day, n=4)], at=clock.now())
    store.compact_visits()
    store.insert_link(make("gone", clock))  # the code is reused
    assert store.link_stats("gone").total == 0 and store.link_stats("gone").per_day == {}


def test_compactors_folding_the_same_files_at_once_count_each_visit_once(
    store: SqlStore, clock: FakeClock
) -> None:
    store.insert_link(make("busy", clock))
    day = date(2026, 1, 1)
    names = [f"f{i:02d}" for i in range(20)]
    stores = [open_store(store.url) for _ in range(4)]

    def fold_all(other: SqlStore) -> int:
        folded = 0
        for name in names:  # every compactor tries every file, one at a time
            if not other.fold_visits([name], [_visit("busy", day, n=50)], at=clock.now()):
                folded += 50
        return folded

    try:
        with ThreadPoolExecutor(4) as pool:
            folded = sum(pool.map(fold_all, stores))
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


def test_postgresql_connections_give_up_after_a_timeout_unless_the_url_sets_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given: dict[str, object] = {}

    def capture(cls: object, *args: object, **params: object) -> None:
        given.clear()
        given.update(params)
        raise RuntimeError("no connection needed")

    monkeypatch.setattr(BoundedConnection, "connect", classmethod(capture))

    def params_of(url: str) -> dict[str, object]:
        """What the driver would be given (caught before it connects)."""
        with pytest.raises(Exception, match="no connection needed"):
            open_store(url, answer_seconds=0.5).engine.connect()
        return dict(given)

    params = params_of("postgresql://u@db.example/links")
    assert params["connect_timeout"] == PG_CONNECT_TIMEOUT
    # the server cancels a statement, the kernel drops a silent peer
    assert "statement_timeout=500" in str(params["options"])
    assert params["keepalives"] == 1 and params["tcp_user_timeout"] == 1000
    assert str(params_of("postgresql://u@db.example/links?connect_timeout=3")["connect_timeout"]) == "3"


def test_unreachable_database_is_a_store_error() -> None:
    down = open_store("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreError, match="not answering"):
        down.ping()
    with pytest.raises(StoreError, match="not answering"):
        down.insert_links([make("x", FakeClock())])
    with pytest.raises(StoreError, match="not a database URL|Unsupported"):
        open_store("mysql://x")


def test_the_database_holds_one_active_key_per_name(store: SqlStore) -> None:
    # the service checks first; two creates at the same instant both pass that check
    from steadylink.links.model import ApiKey

    at = FakeClock().now()
    store.insert_key(ApiKey("k1", "ci", 1, "slk_k1", at), "hash1")
    with pytest.raises(Conflict, match="already named 'ci'") as caught:
        store.insert_key(ApiKey("k2", "ci", 1, "slk_k2", at), "hash2")
    assert caught.value.field == "name"
    store.revoke_key("k1", at)
    store.insert_key(ApiKey("k3", "ci", 1, "slk_k3", at), "hash3")  # a revoked key's name is free again
    assert {k.id for k in store.list_keys() if k.name == "ci"} == {"k1", "k3"}
