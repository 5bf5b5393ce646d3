"""Batched clicks on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from steadylink.clock import FakeClock
from steadylink.links.clicks import BatchClickRecorder, referrer_host
from steadylink.links.model import Link, LinkKind
from steadylink.links.sql_store import SqlStore, open_store

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _insert(store: SqlStore, clock: FakeClock, code: str) -> None:
    now = clock.now()
    store.insert_link(Link(code, LinkKind.URL, "https://example.com/", None, now, now))


def test_flush_writes_one_batch_with_hosts_agents_and_bots(store: SqlStore, clock: FakeClock) -> None:
    _insert(store, clock, "abc")
    clicks = BatchClickRecorder(store, clock)
    clicks.record("abc", referrer="https://News.example.org/a?secret=1", user_agent=FIREFOX)
    clicks.record("abc", referrer="https://news.example.org/b", user_agent=FIREFOX)
    clicks.record("abc", referrer=None, user_agent="Twitterbot/1.0")
    assert store.link_stats("abc").total == 0  # nothing written before the flush
    assert clicks.flush() == 3
    assert clicks.flush() == 0
    store.compact_visits()
    stats = store.link_stats("abc")
    assert stats.total == 3
    assert stats.per_day == {"2026-01-01": 3}
    assert stats.referrers == {"news.example.org": 2, "": 1}
    assert stats.agents == {"Firefox": 2, "bot": 1}
    assert (stats.humans, stats.bots) == (2, 1)


def test_a_failed_flush_keeps_the_batch(tmp_path: object, clock: FakeClock) -> None:
    unreachable = open_store("postgresql://nobody@127.0.0.1:1/none")
    clicks = BatchClickRecorder(unreachable, clock)
    clicks.record("abc", referrer=None, user_agent=None)
    with pytest.raises(Exception):  # noqa: B017 - whichever error the driver raises
        clicks.flush()
    assert clicks.pending == 1
    unreachable.close()


def test_only_the_referrer_host_is_kept() -> None:
    assert referrer_host("https://user@Mail.Example.com:8443/inbox?id=42") == "mail.example.com"
    assert referrer_host("not a url") == ""
    assert referrer_host(None) == ""
