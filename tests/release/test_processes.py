"""Worker groups as /proc shows them: parsing, grouping, restart counting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from steadylink.release.processes import (
    GroupProcesses,
    ProcessInfo,
    RestartCount,
    is_group_gone,
    parse_stat,
    read_group,
)

PAGE = 4096


def stat_line(pid: int, ppid: int, pgid: int, state: str = "S", start: int = 100, rss: int = 10) -> str:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    # cutime cstime priority nice num_threads itrealvalue starttime vsize rss ...
    rest = [state, ppid, pgid, pgid, 0, -1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 20, 0, 1, 0, start, 1000, rss]
    return f"{pid} (py (thon) x) " + " ".join(map(str, rest)) + " 0 0 0\n"


def fake_proc(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    proc = tmp_path / "proc"
    for line, cmdline in rows:
        pid = line.split()[0]
        (proc / pid).mkdir(parents=True)
        (proc / pid / "stat").write_text(line)
        (proc / pid / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode())
    (proc / "self").mkdir()
    return proc


def test_a_stat_line_parses_even_with_parentheses_in_the_name() -> None:
    info = parse_stat(stat_line(42, 1, 40, "T", 777, 3), page_size=PAGE)
    assert info == ProcessInfo(42, 1, 40, "T", 777, 3 * PAGE)
    assert info.is_stopped
    assert parse_stat(stat_line(42, 1, 40, "Z")) is None
    assert parse_stat("garbage") is None


def test_a_group_holds_its_leader_workers_and_compactor_and_nothing_else(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        [
            (stat_line(10, 1, 10, rss=100), "python granian --workers 2"),
            (stat_line(11, 10, 10, rss=200), "python -m steadylink compact --follow 10"),
            (stat_line(12, 10, 10, rss=300), "python granian --workers 2"),
            (stat_line(13, 1, 10, rss=300), "python granian --workers 2"),  # orphaned worker
            (stat_line(14, 10, 10, "Z"), ""),
            (stat_line(20, 1, 20), "something else"),
        ],
    )
    group = read_group(10, proc=proc)
    assert group.is_leader_alive
    assert sorted(p.pid for p in group.workers) == [12, 13]
    assert group.compactor is not None and group.compactor.pid == 11
    assert group.rss_bytes == 900 * os.sysconf("SC_PAGE_SIZE")
    assert read_group(99, proc=proc).is_empty


def group(*workers: tuple[int, int]) -> GroupProcesses:
    return GroupProcesses(1, tuple(ProcessInfo(pid, 1, 1, "S", start, 0) for pid, start in workers))


def test_restarts_count_every_worker_that_is_gone_even_when_replaced() -> None:
    count = RestartCount(group((2, 10), (3, 10)))
    assert count.add(group((2, 10), (3, 10))) == 0
    assert count.add(group((2, 10), (4, 20))) == 1  # 3 exited, granian forked 4
    assert count.add(group((2, 10), (4, 20))) == 1
    assert count.add(group((5, 30), (4, 20))) == 2
    assert count.add(group((5, 40), (4, 20))) == 3  # a reused pid is another process


def test_a_real_group_is_seen_whole_and_gone_when_every_member_is(tmp_path: Path) -> None:
    script = "import os, time\nos.fork()\ntime.sleep(60)\n"
    leader = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(read_group(leader.pid).processes) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait()
        assert not is_group_gone(leader.pid)  # the forked child lives on in the group
        assert not read_group(leader.pid).is_leader_alive
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not is_group_gone(leader.pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_after_the_first_look_only_members_and_the_leaders_children_are_read(tmp_path: Path) -> None:
    from steadylink.release.processes import GroupReader

    proc = fake_proc(
        tmp_path,
        [
            (stat_line(10, 1, 10), "python granian --workers 2"),
            (stat_line(11, 10, 10), "python -m steadylink compact --follow 10"),
            (stat_line(12, 10, 10), "python granian --workers 2"),
            (stat_line(14, 1, 10), "python granian --workers 2"),  # an orphan from before
        ],
    )
    (proc / "10" / "task" / "10").mkdir(parents=True)
    children = proc / "10" / "task" / "10" / "children"
    children.write_text("11 12")
    now = [0.0]
    reader = GroupReader(discover_every=1.0, proc=proc, clock=lambda: now[0])
    assert sorted(p.pid for p in reader.read([10])[10].processes) == [10, 11, 12, 14]
    (proc / "12" / "stat").write_text(stat_line(12, 10, 10, "T"))  # stopped: seen at the next tick
    (proc / "13").mkdir()
    (proc / "13" / "stat").write_text(stat_line(13, 10, 10))  # granian's new worker
    (proc / "13" / "cmdline").write_bytes(b"python\0granian")
    children.write_text("11 12 13")
    (proc / "20").mkdir()
    (proc / "20" / "stat").write_text(stat_line(20, 1, 10))  # in the group but no member's child: a full pass's
    now[0] = 0.25
    group = reader.read([10])[10]
    assert [(p.pid, p.is_stopped) for p in sorted(group.workers, key=lambda p: p.pid)] == [(12, True), (14, False)]
    assert group.compactor is not None and group.compactor.pid == 11  # remembered, not read again
    now[0] = 1.0  # discovery: the leader's children
    assert sorted(p.pid for p in reader.read([10])[10].workers) == [12, 13, 14]
    (proc / "11" / "stat").write_text(stat_line(11, 10, 10, start=999))  # pid 11 reused
    (proc / "11" / "cmdline").write_bytes(b"python\0granian")
    now[0] = 1.25
    assert reader.read([10])[10].compactor is None  # read afresh: not the compactor it was
    children.unlink()  # a kernel without the children file: discovery is a full pass
    now[0] = 2.5
    assert 20 in {p.pid for p in reader.read([10])[10].processes}
