"""One definition of a plain link: the Python rule and its SQL agree on every kind of link."""

from __future__ import annotations

from datetime import timedelta

import pytest

from steadylink.clock import FakeClock
from steadylink.links.model import Link, LinkKind, StoredFile
from steadylink.links.plain import is_plain
from steadylink.links.sql_store import SqlStore


def test_the_store_lists_exactly_the_links_is_plain_accepts(store: SqlStore, clock: FakeClock) -> None:
    now = clock.now()

    def link(code: str, **fields: object) -> Link:
        base: dict[str, object] = {"kind": LinkKind.URL, "url": f"https://example.com/{code}", "file": None}
        base.update(fields)
        return Link(code=code, created_at=now, updated_at=now, **base)  # type: ignore[arg-type]

    links = [
        link("plain1"),
        link("plain2"),
        link("locked", password_hash="x"),
        link("off", is_disabled=True),
        link("expiring", expires_at=now + timedelta(days=1)),
        link("limited", max_visits=3),
        link("upload", kind=LinkKind.FILE, url=None, file=StoredFile("a" * 64, "f.txt", 1, "text/plain")),
    ]
    store.insert_links(links)
    assert {code for code, _ in store.plain_links(100)} == {x.code for x in links if is_plain(x)}
    assert {x.code for x in links if is_plain(x)} == {"plain1", "plain2"}


@pytest.mark.parametrize("most_visited", [False, True])
def test_the_bound_keeps_the_newest_or_the_most_visited(
    store: SqlStore, clock: FakeClock, most_visited: bool
) -> None:
    """The cache warms with the newest plain links; the edge map, past its bound, keeps the most visited."""
    now = clock.now()
    for n in range(5):
        at = now + timedelta(seconds=n)
        store.insert_link(Link(f"c{n}", LinkKind.URL, "https://example.com/", None, at, at, visits=10 - n))
    kept = [code for code, _ in store.plain_links(2, most_visited=most_visited)]
    assert kept == (["c0", "c1"] if most_visited else ["c4", "c3"])
