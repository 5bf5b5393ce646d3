"""The supervisor's decisions: what to restart, from what the guard saw at one tick.

``Supervisor.decide`` takes one ``StackView`` (is HAProxy running; for each
supervised worker group: its leader, workers, compactor, stopped processes,
whether it answered its health check) and returns the ``Action`` list to
carry out now. It does no I/O, so it is tested with a ``FakeClock``; the loop
that builds the views and acts (``release/supervision.py``) is separate.

The rules, and why:

- HAProxy whose master is gone (a ``kill -9`` of the master, or of its
  worker, which takes the master with it) is restarted at once, with the
  slot weights the guard holds: every second without it is downtime. One
  whose master lives but whose runtime API has not answered for
  ``edge_unanswered_seconds`` is restarted too.
- A worker group whose leader is gone is replaced: its orphaned workers
  may still serve, but nothing respawns them and its compactor followed the
  leader out, so visits would silently stop counting. Replace = start the
  same release on a free slot, move the old slot's weight to it, stop the old
  group (``Guard.replace_group``).
- A group that has not answered its health check for ``unanswered_seconds``
  (every worker hung or stopped), or that has run short of workers for
  ``short_of_workers_seconds`` (granian does not replace them), is replaced.
- A stopped process (SIGSTOP: state ``T``) in a group is killed after
  ``stall_seconds``: granian forks a fresh worker, and the requests the
  stopped one held fail fast (HAProxy retries a GET on another connection)
  instead of waiting for the stop to end. A stopped leader means the group
  is replaced.
- A worker whose event loop has not turned for ``wedged_seconds`` (its beat
  file, ``heartbeat.py``, is that old) is killed like a stopped one: it may
  still accept connections, and while its sibling answers the group's
  health check every request it takes would hang.
- A worker that exits (a crash, a ``kill -9``) is replaced by granian
  itself; the supervisor only says so (``NoteRespawn``), once per exit, so
  no restart goes unrecorded.
- A group whose leader lives but whose compactor is gone for
  ``compactor_grace_seconds`` gets a new compactor.
- A group being replaced still has its stopped processes killed: a
  replacement that takes long (or fails and waits to be tried again) must
  not leave requests hanging on them.
- The same action on the same target waits ``retry_seconds`` before it is
  asked again (a release that cannot start is not restarted in a tight loop).
- While a deploy runs, a group is replaced only when it does not answer at
  all: the canary is comparing the groups it started with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steadylink.clock import Clock


@dataclass(frozen=True)
class GroupView:
    """One supervised worker group at one tick."""

    slot: int
    release: str
    leader: int
    is_leader_alive: bool
    workers: int  # live, not stopped
    stalled: tuple[int, ...] = ()  # stopped workers or compactor
    is_leader_stalled: bool = False
    has_compactor: bool = True
    is_answering: bool | None = None  # None: not probed this tick
    is_visible: bool = True  # False without /proc: only the leader is known
    worker_pids: tuple[int, ...] = ()  # every worker, stopped ones included
    beat_ages: tuple[tuple[int, float], ...] = ()  # (worker, seconds since its loop last turned)


@dataclass(frozen=True)
class StackView:
    is_edge_running: bool
    is_edge_answering: bool = True
    groups: tuple[GroupView, ...] = ()
    expected_workers: int = 2
    is_deploying: bool = False
    # the edge visit reader (edge/visitreader.py); None when edge redirects are off
    is_visit_reader_running: bool | None = None
    is_visit_reader_stopped: bool = False  # stopped by a signal: it runs and reads nothing


@dataclass(frozen=True)
class RestartEdge:
    why: str
    what: str = "haproxy"


@dataclass(frozen=True)
class ReplaceGroup:
    slot: int
    release: str
    why: str
    what: str = "workers"


@dataclass(frozen=True)
class KillStalled:
    slot: int
    release: str
    pids: tuple[int, ...]
    why: str
    what: str = "workers"


@dataclass(frozen=True)
class RestartCompactor:
    slot: int
    release: str
    why: str
    what: str = "compactor"


@dataclass(frozen=True)
class RestartVisitReader:
    why: str
    what: str = "edge visit reader"
    is_stopped: bool = False  # the reader runs but is stopped: it is killed first


@dataclass(frozen=True)
class NoteRespawn:
    """Workers of a group exited and granian replaced them: nothing to do but say so."""

    slot: int
    release: str
    gone: tuple[int, ...]
    new: tuple[int, ...]
    why: str
    what: str = "workers"
    # a later look: granian forked the replacement of workers said gone before
    is_late_replacement: bool = False


Action = RestartEdge | ReplaceGroup | KillStalled | RestartCompactor | RestartVisitReader | NoteRespawn


@dataclass(frozen=True)
class SupervisorPolicy:
    edge_unanswered_seconds: float = 2.0
    unanswered_seconds: float = 3.0
    short_of_workers_seconds: float = 10.0
    stall_seconds: float = 1.0
    wedged_seconds: float = 5.0
    compactor_grace_seconds: float = 2.0
    retry_seconds: float = 10.0


@dataclass
class _Since:
    """When each condition was first seen, by key; forgotten when it clears or is not
    looked at in a tick (its group or process is no longer there)."""

    first: dict[object, float] = field(default_factory=dict)
    seen: set[object] = field(default_factory=set)

    def held_for(self, key: object, is_true: bool, now: float) -> float | None:
        self.seen.add(key)
        if not is_true:
            self.first.pop(key, None)
            return None
        return now - self.first.setdefault(key, now)

    def end_tick(self) -> None:
        self.first = {k: v for k, v in self.first.items() if k in self.seen}
        self.seen = set()


class Supervisor:
    """Decides restarts tick by tick; remembers when each fault was first seen."""

    def __init__(self, policy: SupervisorPolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock
        self._since = _Since()
        self._acted: dict[object, float] = {}
        self._workers: dict[tuple[int, int], frozenset[int]] = {}  # by (slot, leader)
        self._killed: set[int] = set()  # stopped workers killed on purpose: said already
        # workers said gone with no replacement yet, by (slot, leader): the replacement is said too
        self._unreplaced: dict[tuple[int, int], tuple[int, ...]] = {}

    def decide(self, view: StackView) -> list[Action]:
        now = self.clock.monotonic()
        actions: list[Action] = []
        edge = self._decide_edge(view, now)
        if edge is not None:
            actions.append(edge)
        if view.is_visit_reader_running is False:
            # while it is down HAProxy keeps the visits in its ring: no grace needed, none lost
            actions.append(RestartVisitReader("the edge visit reader is gone"))
        stopped = self._since.held_for("visit reader stopped", view.is_visit_reader_stopped, now)
        if stopped is not None and stopped >= self.policy.stall_seconds:
            # it reads nothing while HAProxy's ring fills: past it, visits would be lost
            why = f"the edge visit reader has been stopped (SIGSTOP) for {stopped:.0f} s"
            actions.append(RestartVisitReader(why, is_stopped=True))
        for group in view.groups:
            actions += self._decide_group(group, view, now)
        self._since.end_tick()
        notes = [n for n in map(self._note_respawn, view.groups) if n is not None]
        seen = {(g.slot, g.leader) for g in view.groups}
        self._workers = {k: v for k, v in self._workers.items() if k in seen}
        self._unreplaced = {k: v for k, v in self._unreplaced.items() if k in seen}
        return [a for a in actions if self._may_act(a, now)] + notes

    def _note_respawn(self, group: GroupView) -> NoteRespawn | None:
        if not group.is_visible or not group.is_leader_alive:
            return None
        key = (group.slot, group.leader)
        current = frozenset(group.worker_pids)
        before = self._workers.get(key)
        self._workers[key] = current
        if before is None:
            return None
        gone = tuple(sorted(before - current - self._killed))
        self._killed -= before - current
        new = tuple(sorted(current - before))
        waiting = self._unreplaced.pop(key, ())
        if not gone:
            if not (waiting and new):
                if waiting:
                    self._unreplaced[key] = waiting
                return None
            started = ", ".join(map(str, new))
            why = f"granian started {started} in place of worker(s) {', '.join(map(str, waiting))}"
            return NoteRespawn(group.slot, group.release, waiting, new, why, is_late_replacement=True)
        if not new:
            self._unreplaced[key] = waiting + gone
        pids = ", ".join(map(str, gone))
        replaced = f"granian started {', '.join(map(str, new))}" if new else "no replacement yet"
        return NoteRespawn(group.slot, group.release, gone, new, f"worker(s) {pids} exited; {replaced}")

    def _decide_edge(self, view: StackView, now: float) -> RestartEdge | None:
        if not view.is_edge_running:
            return RestartEdge("HAProxy's master process is gone")
        silent = self._since.held_for("edge-silent", not view.is_edge_answering, now)
        if silent is not None and silent >= self.policy.edge_unanswered_seconds:
            return RestartEdge(f"HAProxy's runtime API has not answered for {silent:.1f} s")
        return None

    def _decide_group(self, group: GroupView, view: StackView, now: float) -> list[Action]:
        policy, slot, release = self.policy, group.slot, group.release
        key = ("group", slot, group.leader)
        # None (not probed this tick) keeps what the last probe said
        is_failing = group.is_answering is False or (
            group.is_answering is None and (*key, "silent") in self._since.first
        )
        silent = self._since.held_for((*key, "silent"), is_failing, now)
        is_silent = silent is not None and silent >= policy.unanswered_seconds
        replace: str | None = None
        if not group.is_leader_alive:
            replace = f"its leader (pid {group.leader}) is gone"
        elif group.is_leader_stalled:
            replace = f"its leader (pid {group.leader}) is stopped"
        elif is_silent:
            replace = f"it has not answered its health check for {silent:.1f} s"
        elif group.is_visible:
            short = self._since.held_for(
                (*key, "short"), group.workers + len(group.stalled) < view.expected_workers, now
            )
            if short is not None and short >= policy.short_of_workers_seconds:
                replace = (
                    f"it has run {view.expected_workers - group.workers} worker(s) short for {short:.0f} s"
                )
        actions: list[Action] = []
        if replace is not None and (not view.is_deploying or is_silent):
            actions.append(ReplaceGroup(slot, release, replace))
        stalled = tuple(
            pid
            for pid in group.stalled
            if (held := self._since.held_for((*key, "stalled", pid), True, now)) is not None
            and held >= policy.stall_seconds
        )
        wedged = tuple(
            pid for pid, age in group.beat_ages if age >= policy.wedged_seconds and pid not in group.stalled
        )
        whys = []
        if stalled:
            pids = ", ".join(map(str, stalled))
            whys.append(f"process(es) {pids} stopped (SIGSTOP) for {policy.stall_seconds:g} s or more")
        if wedged:
            pids = ", ".join(map(str, wedged))
            whys.append(f"worker(s) {pids}: event loop stuck for {policy.wedged_seconds:g} s or more")
        if whys:
            actions.append(KillStalled(slot, release, stalled + wedged, "; ".join(whys)))
        if group.is_visible and replace is None:
            gone = self._since.held_for((*key, "compactor"), not group.has_compactor, now)
            if gone is not None and gone >= policy.compactor_grace_seconds:
                why = f"its visit compactor has been gone for {gone:.1f} s"
                actions.append(RestartCompactor(slot, release, why))
        return actions

    def _may_act(self, action: Action, now: float) -> bool:
        key = _action_key(action)
        last = self._acted.get(key)
        if last is not None and now - last < self.policy.retry_seconds:
            return False
        self._acted[key] = now
        return True

    def forget(self, action: Action) -> None:
        """The action was carried out: the next fault of that kind may be acted on at once."""
        self._acted.pop(_action_key(action), None)
        if isinstance(action, KillStalled):
            self._killed.update(action.pids)
        if isinstance(action, RestartEdge):
            self._since.first.pop("edge-silent", None)


def _action_key(action: Action) -> object:
    if isinstance(action, RestartEdge):
        return ("edge",)
    if isinstance(action, RestartVisitReader):
        return ("visit-reader",)
    return (type(action).__name__, action.slot)
