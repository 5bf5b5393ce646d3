"""One rule for "plain": the Python predicate and the store's query agree on every kind of link."""

from __future__ import annotations

from datetime import timedelta

import pytest

from steadylink.clock import FakeClock
from steadylink.links.cache import is_plain as cache_is_plain
from steadylink.links.model import Link, LinkKind, StoredFile
from steadylink.links.plain import is_plain
from steadylink.links.sql_store import SqlStore


def _links(clock: FakeClock) -> list[Link]:
    now = clock.now()

    def url(code: str, **fields: object) -> Link:
        return Link(code, LinkKind.URL, f"https://example.com/{code}", None, now, now, **fields)  # type: ignore[arg-type]

    file = StoredFile("0" * 64, "a.txt", 1, "text/plain")
    return [
        url("plain"),
        url("visited", visits=9),
        url("pw", password_hash="x"),
        url("off", is_disabled=True),
        url("exp", expires_at=now + timedelta(days=1)),
        url("lim", max_visits=3),
        Link("file", LinkKind.FILE, None, file, now, now),
    ]


def test_the_cache_uses_the_one_rule() -> None:
    assert cache_is_plain is is_plain


def test_predicate_and_query_agree(store: SqlStore, clock: FakeClock) -> None:
    links = _links(clock)
    store.insert_links(links)
    by_query = {code for code, _ in store.plain_links(100)}
    assert by_query == {link.code for link in links if is_plain(link)} == {"plain", "visited"}


@pytest.mark.parametrize("most_visited", [False, True])
def test_the_bound_keeps_the_newest_or_the_most_visited(
    store: SqlStore, clock: FakeClock, most_visited: bool
) -> None:
    now = clock.now()
    for n in range(5):
        at = now + timedelta(seconds=n)
        store.insert_link(Link(f"c{n}", LinkKind.URL, "https://example.com/", None, at, at, visits=10 - n))
    kept = [code for code, _ in store.plain_links(2, most_visited=most_visited)]
    assert kept == (["c0", "c1"] if most_visited else ["c4", "c3"])
