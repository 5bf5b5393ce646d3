"""Edge visits: HAProxy's numbered log lines become the workers' spool lines, each counted once."""

from __future__ import annotations

from datetime import UTC, datetime

from steadylink.clock import FakeClock
from steadylink.edge.visits import VisitTally
from steadylink.links.clicks import BatchClickRecorder
from steadylink.links.spool import VisitSpool

DAY = "2026-03-04"


def line(seq: int, code: str = "abc", ref: str = "-", agent: str = "-", pid: int = 7) -> bytes:
    return f"{pid} {seq} /{code}\t{ref}\t{agent}\n".encode()


def test_lines_become_the_same_spool_lines_as_a_workers(tmp_path: object) -> None:
    ref, agent = "https://news.example.org/a?b", "Mozilla/5.0 (X11; Linux) Gecko/20100101 Firefox/120.0"
    tally = VisitTally(day=DAY)
    # as HAProxy's json(ascii) writes them
    tally.feed(line(1, ref=ref.replace("/", "\\/"), agent=agent.replace("/", "\\/")))
    tally.feed(line(2, agent="Googlebot\\/2.1") + line(3))
    clock = FakeClock(datetime(2026, 3, 4, 12, tzinfo=UTC))
    worker = BatchClickRecorder(VisitSpool(tmp_path), clock)  # type: ignore[arg-type]
    worker.record("abc", referrer=ref, user_agent=agent)
    worker.record("abc", referrer=None, user_agent="Googlebot/2.1")
    worker.record("abc", referrer=None, user_agent=None)
    assert tally.take(DAY) == worker.take()
    assert tally.received == 3


def test_a_line_cut_between_two_reads_is_counted_once_whole() -> None:
    tally = VisitTally(day=DAY)
    data = line(1) + line(2, code="xyz")
    assert tally.feed(data[:25]) == 1
    assert tally.feed(data[25:]) == 1
    assert [entry.split("\t")[0] for entry in tally.take(DAY)] == ["abc", "xyz"]


def test_a_line_sent_again_is_not_counted_twice() -> None:
    tally = VisitTally(day=DAY)
    tally.feed(line(1) + line(2) + line(3))
    tally.feed(line(2) + line(3) + line(4))  # HAProxy resent after a reconnect
    assert (tally.received, tally.duplicates) == (4, 2)


def test_late_lines_are_no_loss_but_a_gap_that_stays_open_is() -> None:
    tally = VisitTally(day=DAY)
    tally.feed(line(1) + line(3))
    tally.take(DAY)
    tally.feed(line(2))  # late, from another HAProxy thread
    tally.take(DAY)
    assert tally.lost == 0
    tally.feed(line(10))  # 4..9 never come
    tally.take(DAY)
    assert tally.lost == 0  # not yet: they may still be on their way
    tally.take(DAY)
    assert tally.lost == 6
    tally.feed(line(5))  # far too late: already counted as lost, not as a visit
    assert tally.received == 4


def test_each_haproxy_process_numbers_its_own_visits() -> None:
    tally = VisitTally(day=DAY)
    tally.feed(line(1, pid=10) + line(2, pid=10) + line(1, pid=11))  # a reload: the new worker starts at 1
    tally.take(DAY)
    tally.take(DAY)
    assert (tally.received, tally.lost, tally.duplicates) == (3, 0, 0)


def test_a_restarted_reader_counts_what_its_predecessor_read_but_never_wrote_as_lost() -> None:
    before = VisitTally(day=DAY)
    before.feed(line(1) + line(2))
    before.take(DAY)
    saved = before.state()
    before.feed(line(3) + line(4))  # read, then killed before the next flush
    after = VisitTally(day=DAY)
    after.restore(saved)
    after.feed(line(2) + line(5))  # 2 is a resend; 3 and 4 died with the old reader
    after.take(DAY)
    after.take(DAY)
    assert (after.received, after.lost, after.duplicates) == (3, 2, 1)


def test_damaged_lines_are_counted_not_folded() -> None:
    tally = VisitTally(day=DAY)
    tally.feed(b"garbage\n7 x /abc\t-\t-\n" + line(1))
    assert (tally.received, tally.damaged) == (1, 2)


def test_a_numbered_line_with_too_few_or_too_many_fields_is_damaged_on_either_path() -> None:
    # the usual line (next number of the same process) and a first line are read differently
    tally = VisitTally(day=DAY)
    tally.feed(b"7 1 /abc\t-\n" + b"7 2 /abc\t-\t-\textra\n" + line(3) + b"8 1 /abc\n" + line(4))
    assert (tally.received, tally.damaged) == (2, 3)
    assert [spool.split("\t", 1)[0] for spool in tally.take(DAY)] == ["abc", "abc"]
    assert tally.processes["7"].floor == 4  # damaged but numbered: not a gap


def test_a_line_haproxy_logged_before_any_rule_ran_is_no_visit_and_no_damage() -> None:
    tally = VisitTally(day=DAY)
    tally.feed(b"7 - <BADREQ>\t-\t-\n" + line(1))
    assert (len(tally.take(DAY)), tally.received, tally.damaged, tally.lost) == (1, 1, 0, 0)
