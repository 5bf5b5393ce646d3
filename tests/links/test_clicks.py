"""Batched clicks: recorded in memory, written to the visit spool, folded into a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.links.clicks import BatchClickRecorder, referrer_host
from steadylink.links.model import Link, LinkKind
from steadylink.links.spool import VisitSpool
from steadylink.links.sql_store import SqlStore

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _insert(store: SqlStore, clock: FakeClock, code: str) -> None:
    now = clock.now()
    store.insert_link(Link(code, LinkKind.URL, "https://example.com/", None, now, now))


def test_a_flush_writes_one_file_that_folds_into_hosts_agents_and_bots(
    store: SqlStore, clock: FakeClock, tmp_path: Path
) -> None:
    _insert(store, clock, "abc")
    spool = VisitSpool(tmp_path / "visits")
    clicks = BatchClickRecorder(spool, clock)
    clicks.record("abc", referrer="https://News.example.org/a?secret=1", user_agent=FIREFOX)
    clicks.record("abc", referrer="https://news.example.org/b", user_agent=FIREFOX)
    clicks.record("abc", referrer=None, user_agent="Twitterbot/1.0")
    assert spool.waiting() == []  # nothing written before the flush
    assert clicks.flush() == 3
    assert clicks.flush() == 0
    assert len(spool.waiting()) == 1
    assert "secret" not in spool.waiting()[0].read_text()  # the referrer's host only
    assert store.link_stats("abc").total == 0  # written, not folded yet
    assert spool.fold(store, clock.now()).visits == 3
    stats = store.link_stats("abc")
    assert stats.total == 3
    assert stats.per_day == {"2026-01-01": 3}
    assert stats.referrers == {"news.example.org": 2, "": 1}
    assert stats.agents == {"Firefox": 2, "bot": 1}
    assert (stats.humans, stats.bots) == (2, 1)


def test_visits_count_for_the_day_of_the_flush_before_them(
    store: SqlStore, clock: FakeClock, tmp_path: Path
) -> None:
    _insert(store, clock, "abc")
    spool = VisitSpool(tmp_path / "visits")
    clicks = BatchClickRecorder(spool, clock)
    clicks.record("abc", referrer=None, user_agent=None)
    clock.advance(86_400)
    clicks.flush()  # the day changes at this flush
    clicks.record("abc", referrer=None, user_agent=None)
    clicks.flush()
    spool.fold(store, clock.now())
    assert store.link_stats("abc").per_day == {"2026-01-01": 1, "2026-01-02": 1}


def test_a_failed_write_keeps_the_batch_for_the_next_flush(clock: FakeClock, tmp_path: Path) -> None:
    blocked = tmp_path / "visits"
    blocked.write_text("a file where the spool directory should be")
    clicks = BatchClickRecorder(VisitSpool(blocked), clock, max_pending=2)
    for code in ("a", "b", "c"):
        clicks.record(code, referrer=None, user_agent=None)
    with pytest.raises(OSError):
        clicks.flush()
    assert clicks.pending == 2  # the newest, up to max_pending
    blocked.unlink()
    assert clicks.flush() == 2
    lines = VisitSpool(blocked).waiting()[0].read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["b", "c"]


def test_only_the_referrer_host_is_kept() -> None:
    assert referrer_host("https://user@Mail.Example.com:8443/inbox?id=42") == "mail.example.com"
    assert referrer_host("not a url") == ""
    assert referrer_host(None) == ""
