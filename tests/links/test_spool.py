"""The visit spool on a real store (SQLite and PostgreSQL): whole files, each folded once."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from steadylink.clock import FakeClock
from steadylink.links import schema, spool
from steadylink.links.model import Link, LinkKind
from steadylink.links.spool import VisitSpool, visit_line_tail
from steadylink.links.sql_store import SqlStore

DAY = "2026-01-01"


def _line(code: str, host: str = "", family: str = "curl", bot: bool = False) -> str:
    return code + visit_line_tail(DAY, host, family, bot)


@pytest.fixture
def visits(tmp_path: Path) -> VisitSpool:
    return VisitSpool(tmp_path / "visits")


@pytest.fixture
def linked(store: SqlStore, clock: FakeClock) -> SqlStore:
    for code in ("a", "b"):
        store.insert_link(Link(code, LinkKind.URL, "https://example.com/", None, clock.now(), clock.now()))
    return store


def _remembered(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.visit_spools)).scalar_one())


def test_files_are_whole_and_waiting_oldest_first(visits: VisitSpool) -> None:
    first = visits.write(_line("a"))
    second = visits.write(_line("b") * 2)
    assert visits.waiting() == [first, second]
    assert not [p for p in visits.directory.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    assert second.read_text() == _line("b") * 2


def test_a_fold_counts_identical_lines_and_deletes_the_files(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    visits.write(_line("a", "news.example", "Firefox") * 3 + _line("b", bot=True, family="Googlebot"))
    visits.write(_line("a", "news.example", "Firefox"))
    fold = visits.fold(linked, clock.now())
    assert (fold.visits, fold.files, fold.dropped) == (5, 2, 0)
    assert visits.waiting() == []
    a, b = linked.link_stats("a"), linked.link_stats("b")
    assert a.total == 4 and a.referrers == {"news.example": 4} and a.per_day == {DAY: 4}
    assert b.total == 1 and b.bots == 1
    assert visits.fold(linked, clock.now()).visits == 0


def test_names_are_kept_only_until_the_next_fold(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    visits.write(_line("a"))
    visits.fold(linked, clock.now())
    assert _remembered(linked) == 1  # the file is gone, its name still guards against a refold
    visits.fold(linked, clock.now())
    assert _remembered(linked) == 0


def test_a_file_folded_before_a_crash_is_deleted_not_counted_again(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    folded = visits.write(_line("a") * 2)
    linked.fold_visits([folded.name], [], at=clock.now())  # folded; the compactor died before deleting it
    visits.write(_line("a") * 3)
    assert visits.fold(linked, clock.now()).files == 1
    assert visits.fold(linked, clock.now()).visits == 3
    assert linked.link_stats("a").total == 3
    assert visits.waiting() == []


def test_damaged_lines_are_dropped_and_reported(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    visits.write(_line("a") + "garbage\n" + "a\tnot-a-day\t\tcurl\t0\n" + "a\t2026-01-01\t\tcurl\t2\n")
    fold = visits.fold(linked, clock.now())
    assert (fold.visits, fold.dropped) == (1, 3)
    assert linked.link_stats("a").total == 1


def test_a_line_the_database_would_refuse_is_dropped_and_the_rest_folded(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    # zeros where a block was lost (a power cut): the line still looks like a visit,
    # but PostgreSQL refuses NUL in text, and the oldest file is retried every pass
    visits.write(_line("a", host="\x00\x00") + _line("\x00a") + _line("a", host="ok.example"))
    visits.write(_line("b"))
    fold = visits.fold(linked, clock.now())
    assert (fold.visits, fold.files, fold.dropped) == (2, 2, 2)
    assert visits.waiting() == []
    assert linked.link_stats("a").referrers == {"ok.example": 1}
    assert linked.link_stats("b").total == 1


def test_separators_in_a_referrer_cannot_split_a_line(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    visits.write(_line("a", host="evil\texample\n.com"))
    assert visits.fold(linked, clock.now()).visits == 1
    assert linked.link_stats("a").referrers == {"evil example .com": 1}


def test_a_referrer_host_with_a_byte_85_is_one_visit(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    # a raw UTF-8 host read as latin-1, as headers are: "\u0445" is d1 85, and U+0085
    # (like \x0c or U+2028) is a line break to str.splitlines, not to the writer
    host = "\u0445.example".encode().decode("latin-1")
    visits.write(_line("a", host=host) + _line("a", host="a\x0cb"))
    fold = visits.fold(linked, clock.now())
    assert (fold.visits, fold.dropped) == (2, 0)
    assert linked.link_stats("a").referrers == {host: 1, "a\x0cb": 1}


def test_only_one_compactor_folds_a_spool_at_a_time(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    visits.write(_line("a"))
    with open(visits.directory / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another compactor is folding
        assert visits.fold(linked, clock.now()).files == 0
        assert len(visits.waiting()) == 1
    assert visits.fold(linked, clock.now()).visits == 1


def test_a_big_backlog_is_folded_in_several_transactions(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "_FOLD_BYTES", 3 * len(_line("a")))
    for _ in range(7):
        visits.write(_line("a"))
    folds = [visits.fold(linked, clock.now()) for _ in range(4)]
    assert [fold.files for fold in folds] == [3, 3, 1, 0]
    assert [fold.more for fold in folds] == [True, True, False, False]  # a backlog says so
    assert linked.link_stats("a").total == 7


def test_a_backlog_of_small_files_is_folded_in_batches_a_statement_can_name(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    # one visit a second per worker while the compactor was down: 4 MB is ~100,000
    # files, but one statement takes 65,535 parameters (PostgreSQL), 999 on older SQLite
    for _ in range(1_000):
        visits.write(_line("a"))
    first = visits.fold(linked, clock.now())
    assert 0 < first.files <= 999
    while visits.fold(linked, clock.now()).files:
        pass
    assert linked.link_stats("a").total == 1_000 and visits.waiting() == []


def test_a_half_written_file_of_a_killed_worker_is_removed_later(
    linked: SqlStore, visits: VisitSpool, clock: FakeClock
) -> None:
    visits.directory.mkdir(parents=True)
    fresh = visits.directory / ".123-host-1-1.visits"
    stale = visits.directory / ".100-host-1-1.visits"
    for path in (fresh, stale):
        path.write_text("a\t2026")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    visits.fold(linked, clock.now())
    assert fresh.exists() and not stale.exists()
    assert linked.link_stats("a").total == 0


def test_a_removed_spool_directory_is_made_again(visits: VisitSpool) -> None:
    visits.write(_line("a")).unlink()
    visits.directory.rmdir()
    assert visits.write(_line("b")).read_text() == _line("b")
