"""The supervisor's decisions, tick by tick on a FakeClock."""

from __future__ import annotations

from dataclasses import replace

from steadylink.clock import FakeClock
from steadylink.release.supervisor import (
    Action,
    GroupView,
    KillStalled,
    ReplaceGroup,
    RestartCompactor,
    RestartEdge,
    RestartVisitReader,
    StackView,
    Supervisor,
    SupervisorPolicy,
)

HEALTHY = GroupView(slot=0, release="r1", leader=100, is_leader_alive=True, workers=2, is_answering=True)


def view(*groups: GroupView, edge: bool = True, answering: bool = True, deploying: bool = False) -> StackView:
    return StackView(edge, answering, groups, expected_workers=2, is_deploying=deploying)


def ticks(
    supervisor: Supervisor, clock: FakeClock, seen: StackView, seconds: float, step: float = 0.25
) -> list[tuple[float, Action]]:
    """Every action asked for while ``seen`` holds for ``seconds``, with the second it came at."""
    asked: list[tuple[float, Action]] = []
    start = clock.monotonic()
    while clock.monotonic() - start <= seconds:
        for action in supervisor.decide(seen):
            asked.append((round(clock.monotonic() - start, 2), action))
        clock.advance(step)
    return asked


def test_a_healthy_stack_needs_nothing() -> None:
    clock = FakeClock()
    assert ticks(Supervisor(SupervisorPolicy(), clock), clock, view(HEALTHY), 60) == []


def test_haproxy_gone_is_restarted_at_the_first_tick_and_again_when_it_dies_again() -> None:
    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    [(at, action)] = ticks(supervisor, clock, view(HEALTHY, edge=False), 0)
    assert at == 0 and isinstance(action, RestartEdge) and "master" in action.why
    supervisor.forget(action)  # restarted
    assert isinstance(supervisor.decide(view(HEALTHY, edge=False))[0], RestartEdge)


def test_a_failed_restart_is_not_retried_in_a_tight_loop() -> None:
    clock = FakeClock()
    asked = ticks(Supervisor(SupervisorPolicy(), clock), clock, view(edge=False), 25)
    assert [at for at, _ in asked] == [0, 10, 20]


def test_haproxy_that_stops_answering_is_restarted_after_two_seconds() -> None:
    clock = FakeClock()
    asked = ticks(Supervisor(SupervisorPolicy(), clock), clock, view(answering=False), 3)
    assert [(at, type(a)) for at, a in asked] == [(2.0, RestartEdge)]


def test_a_group_whose_leader_died_is_replaced_at_once() -> None:
    clock = FakeClock()
    dead = replace(HEALTHY, is_leader_alive=False, has_compactor=False)
    [(_at, action)] = ticks(Supervisor(SupervisorPolicy(), clock), clock, view(dead), 0)
    assert action == ReplaceGroup(0, "r1", "its leader (pid 100) is gone")


def test_a_group_that_stops_answering_is_replaced_after_three_seconds() -> None:
    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    hung = replace(HEALTHY, is_answering=False)
    not_probed = replace(HEALTHY, is_answering=None)
    asked: list[tuple[int, Action]] = []
    for second in range(8):
        seen = hung if second % 2 == 0 else not_probed  # probed every other tick
        asked += [(second, a) for a in supervisor.decide(view(seen))]
        clock.advance(1)
    assert [(s, type(a)) for s, a in asked] == [(3, ReplaceGroup)]
    assert "health check for 3.0 s" in asked[0][1].why


def test_one_failed_probe_is_not_a_hung_group() -> None:
    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    for second in range(20):
        seen = replace(HEALTHY, is_answering=second % 3 != 0)
        assert supervisor.decide(view(seen)) == []
        clock.advance(1)


def test_a_stopped_worker_is_killed_after_a_second_and_a_stopped_leader_replaces_the_group() -> None:
    clock = FakeClock()
    stalled = replace(HEALTHY, workers=1, stalled=(101,))
    asked = ticks(Supervisor(SupervisorPolicy(), clock), clock, view(stalled), 2)
    assert [(at, a.pids) for at, a in asked if isinstance(a, KillStalled)] == [(1.0, (101,))]
    assert not any(isinstance(a, ReplaceGroup) for _, a in asked)
    leader = replace(HEALTHY, is_leader_stalled=True)
    assert isinstance(Supervisor(SupervisorPolicy(), clock).decide(view(leader))[0], ReplaceGroup)


def test_a_lost_compactor_is_restarted_after_two_seconds() -> None:
    clock = FakeClock()
    lost = replace(HEALTHY, has_compactor=False)
    asked = ticks(Supervisor(SupervisorPolicy(), clock), clock, view(lost), 3)
    assert [(at, type(a)) for at, a in asked] == [(2.0, RestartCompactor)]


def test_a_group_short_of_workers_for_ten_seconds_is_replaced() -> None:
    clock = FakeClock()
    short = replace(HEALTHY, workers=1)
    asked = ticks(Supervisor(SupervisorPolicy(), clock), clock, view(short), 11, step=1)
    assert [(at, type(a)) for at, a in asked] == [(10, ReplaceGroup)]
    # granian replaced it within a few seconds: nothing to do
    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    asked = ticks(supervisor, clock, view(short), 3, step=1) + ticks(
        supervisor, clock, view(HEALTHY), 20, step=1
    )
    assert asked == []


def test_during_a_deploy_only_a_silent_group_is_replaced() -> None:
    clock = FakeClock()
    dead = replace(HEALTHY, is_leader_alive=False, is_answering=True)
    assert Supervisor(SupervisorPolicy(), clock).decide(view(dead, deploying=True)) == []
    silent = replace(HEALTHY, is_answering=False)
    asked = ticks(Supervisor(SupervisorPolicy(), clock), clock, view(silent, deploying=True), 3)
    assert [type(a) for _, a in asked] == [ReplaceGroup]


def test_a_replaced_group_starts_with_a_clean_slate() -> None:
    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    ticks(supervisor, clock, view(replace(HEALTHY, is_answering=False)), 2.5)
    successor = replace(HEALTHY, slot=1, leader=200, is_answering=False)
    asked = ticks(supervisor, clock, view(successor), 2.5)
    assert asked == []  # its own three seconds, not the old group's


def test_a_stopped_orphan_is_killed_while_its_group_waits_to_be_replaced() -> None:
    clock = FakeClock()
    orphans = replace(HEALTHY, is_leader_alive=False, workers=1, stalled=(101,), has_compactor=False)
    asked = ticks(Supervisor(SupervisorPolicy(), clock), clock, view(orphans), 1.5)
    assert [(at, type(a)) for at, a in asked] == [(0, ReplaceGroup), (1.0, KillStalled)]


def test_a_gone_edge_visit_reader_is_restarted_at_once_and_not_in_a_tight_loop() -> None:
    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    gone = replace(view(HEALTHY), is_visit_reader_running=False)
    asked = ticks(supervisor, clock, gone, 25)
    assert [at for at, _ in asked] == [0, 10, 20]  # a restart that fails is retried every 10 s
    assert all(isinstance(action, RestartVisitReader) for _, action in asked)
    supervisor.forget(asked[0][1])
    assert supervisor.decide(gone) != []  # restarted, then gone again: at once
    # edge redirects off (None) or the reader running: nothing to do
    for seen in (view(HEALTHY), replace(view(HEALTHY), is_visit_reader_running=True)):
        assert ticks(Supervisor(SupervisorPolicy(), clock), clock, seen, 30) == []


def test_a_stopped_edge_visit_reader_is_killed_and_replaced_after_a_second() -> None:
    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    stopped = replace(view(HEALTHY), is_visit_reader_running=True, is_visit_reader_stopped=True)
    asked = ticks(supervisor, clock, stopped, 5)
    assert [at for at, _ in asked] == [1.0]  # then not again within 10 s
    [(_, action)] = asked
    assert isinstance(action, RestartVisitReader) and action.is_stopped
    assert "stopped (SIGSTOP) for 1 s" in action.why
    # a reader stopped for less than a second (a debugger's blink) is left alone
    blink = ticks(Supervisor(SupervisorPolicy(), clock), clock, stopped, 0.75)
    assert blink == []


def test_a_worker_granian_replaced_is_said_once_and_one_killed_on_purpose_is_not() -> None:
    from steadylink.release.supervisor import NoteRespawn

    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    group = replace(HEALTHY, worker_pids=(101, 102))
    assert supervisor.decide(view(group)) == []  # the first look only learns the pids
    respawned = replace(group, worker_pids=(102, 103))  # 101 exited (kill -9, a crash); granian forked 103
    [note] = supervisor.decide(view(respawned))
    assert isinstance(note, NoteRespawn) and (note.gone, note.new) == ((101,), (103,))
    assert "101 exited; granian started 103" in note.why
    assert supervisor.decide(view(respawned)) == []  # said once
    # a stopped worker the supervisor kills is said by that kill, not again as an exit
    stopped = replace(respawned, workers=1, stalled=(102,))
    asked = [a for _, a in ticks(supervisor, clock, view(stopped), 1.0)]
    [kill] = [a for a in asked if isinstance(a, KillStalled)]
    supervisor.forget(kill)
    assert supervisor.decide(view(replace(respawned, worker_pids=(103, 104)))) == []


def test_a_replacement_granian_forks_after_the_exit_was_seen_is_said_too() -> None:
    from steadylink.release.supervisor import NoteRespawn

    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    group = replace(HEALTHY, worker_pids=(101, 102))
    assert supervisor.decide(view(group)) == []
    [exited] = supervisor.decide(view(replace(group, worker_pids=(102,), workers=1)))
    assert isinstance(exited, NoteRespawn) and "101 exited; no replacement yet" in exited.why
    assert not exited.is_late_replacement
    assert supervisor.decide(view(replace(group, worker_pids=(102,), workers=1))) == []  # still waiting
    [replaced] = supervisor.decide(view(replace(group, worker_pids=(102, 103))))
    assert isinstance(replaced, NoteRespawn) and replaced.is_late_replacement
    assert (replaced.gone, replaced.new) == ((101,), (103,))
    assert "granian started 103 in place of worker(s) 101" in replaced.why
    assert supervisor.decide(view(replace(group, worker_pids=(102, 103)))) == []  # said once


def test_a_worker_whose_event_loop_is_stuck_is_killed_and_a_beating_one_is_not() -> None:
    clock = FakeClock()
    supervisor = Supervisor(SupervisorPolicy(), clock)
    beating = replace(HEALTHY, worker_pids=(101, 102), beat_ages=((101, 0.4), (102, 4.9)))
    assert supervisor.decide(view(beating)) == []
    stuck = replace(beating, beat_ages=((101, 0.4), (102, 5.0)))
    [kill] = supervisor.decide(view(stuck))
    assert isinstance(kill, KillStalled) and kill.pids == (102,) and "event loop stuck" in kill.why
    # a stopped worker's beat is old too: it is killed once, as stopped
    stopped = replace(stuck, workers=1, stalled=(102,))
    asked = [a for _, a in ticks(Supervisor(SupervisorPolicy(), clock), clock, view(stopped), 1.0)]
    assert [(a.pids, "SIGSTOP" in a.why) for a in asked if isinstance(a, KillStalled)] == [((102,), True)]
