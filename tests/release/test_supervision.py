"""What the supervision loop tells the supervisor about one group."""

from __future__ import annotations

from steadylink.release.processes import GroupProcesses, ProcessInfo
from steadylink.release.supervision import _group_view


def proc(pid: int, state: str = "S", *, compactor: bool = False) -> ProcessInfo:
    return ProcessInfo(pid, 1, 10, state, 0, 0, is_compactor=compactor)


def test_stopped_workers_are_stalled_not_serving() -> None:
    group = GroupProcesses(10, (proc(10), proc(11, compactor=True), proc(12), proc(13, "T")))
    view = _group_view(0, "r1", group, None, 200, probed=True)
    assert (view.workers, view.stalled, view.has_compactor, view.is_answering) == (1, (13,), True, True)
    assert view.is_leader_alive and not view.is_leader_stalled


def test_a_stopped_leader_and_a_stopped_compactor_are_stalled() -> None:
    group = GroupProcesses(10, (proc(10, "T"), proc(12), proc(11, "T", compactor=True)))
    view = _group_view(0, "r1", group, None, None, probed=False)
    assert view.is_leader_stalled and view.stalled == (11,) and not view.has_compactor
    assert view.is_answering is None


def test_a_dead_leader_with_orphans_is_seen_as_such() -> None:
    group = GroupProcesses(10, (proc(12), proc(13)))
    view = _group_view(0, "r1", group, None, 200, probed=True)
    assert not view.is_leader_alive and view.workers == 2
