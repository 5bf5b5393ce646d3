from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import StoreError
from steadylink.release import read_audit, record_action
from steadylink.types import Role


def test_actions_are_appended_and_read_back_in_order(tmp_path: Path) -> None:
    clock = FakeClock()
    first = record_action(
        tmp_path,
        actor="alice",
        role=Role.DEPLOYER,
        action="deploy",
        target="main",
        outcome="started",
        clock=clock,
        detail={"sha": "abc1234"},
    )
    clock.advance(60)
    record_action(
        tmp_path,
        actor="bob",
        role=Role.ADMIN,
        action="rollback",
        target="20260101000000-abc1234",
        outcome="done",
        clock=clock,
    )
    entries = read_audit(tmp_path)
    assert entries[0] == first
    assert [(e.actor, e.role, e.action, e.outcome) for e in entries] == [
        ("alice", Role.DEPLOYER, "deploy", "started"),
        ("bob", Role.ADMIN, "rollback", "done"),
    ]
    assert entries[1].at == first.at.replace(minute=1)
    assert entries[0].detail == {"sha": "abc1234"}


def test_appending_never_rewrites_earlier_lines(tmp_path: Path) -> None:
    clock = FakeClock()
    record_action(tmp_path, actor="a", role=Role.VIEWER, action="x", target="t", outcome="o", clock=clock)
    before = (tmp_path / "audit.log").read_bytes()
    record_action(tmp_path, actor="b", role=Role.VIEWER, action="y", target="t", outcome="o", clock=clock)
    after = (tmp_path / "audit.log").read_bytes()
    assert after.startswith(before)
    assert after.count(b"\n") == 2


def test_filter_by_action_and_limit(tmp_path: Path) -> None:
    clock = FakeClock()
    for n in range(5):
        action = "deploy" if n % 2 == 0 else "approve"
        record_action(
            tmp_path,
            actor=f"u{n}",
            role=Role.ADMIN,
            action=action,
            target="t",
            outcome="o",
            clock=clock,
        )
    assert [e.actor for e in read_audit(tmp_path, action="deploy")] == ["u0", "u2", "u4"]
    assert [e.actor for e in read_audit(tmp_path, action="deploy", limit=2)] == ["u2", "u4"]
    assert read_audit(tmp_path, limit=0) == []


def test_missing_log_reads_empty(tmp_path: Path) -> None:
    assert read_audit(tmp_path) == []


def test_unfinished_last_line_is_ignored_but_a_corrupt_middle_line_is_reported(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    record_action(tmp_path, actor="a", role=Role.VIEWER, action="x", target="t", outcome="o", clock=clock)
    log = tmp_path / "audit.log"
    with log.open("a") as handle:
        handle.write('{"at": "2026-')
    assert [e.actor for e in read_audit(tmp_path)] == ["a"]

    log.write_text("not json\n" + log.read_text())
    with pytest.raises(StoreError, match="line 1 is not an audit entry"):
        read_audit(tmp_path)
