"""The supervision loop: look at HAProxy and the worker groups, ask the supervisor, act.

Every ``TICK`` seconds it builds a ``StackView`` — HAProxy's master alive and
its runtime API answering (~0.5 ms), each supervised group's processes from
one pass over ``/proc``, and every ``PROBE_EVERY`` seconds each group's
``/healthz`` on its slot socket — hands it to ``Supervisor.decide``
(``release/supervisor.py``, pure) and carries out what it asks through the
guard's hooks. Each restart is said on ``up``'s terminal and recorded in the
event journal as ``supervisor.restarted`` (body: what, why, and the new pid or
slot), a restart that failed as ``supervisor.restart_failed``, and a worker
that exited and was replaced by granian itself as ``supervisor.worker_exited``
(``supervisor.worker_replaced`` when the replacement came after the exit was seen).

Supervised are the groups that serve or stand by for a rollback: the serving
release and the warm previous one. A candidate under canary is the canary's to
judge, not this loop's to heal: its faults are evidence against it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from steadylink import heartbeat
from steadylink.clock import Clock
from steadylink.edge import is_process_running
from steadylink.release.guard import Guard
from steadylink.release.lock import read_lock_holder
from steadylink.release.processes import GroupProcesses, GroupReader
from steadylink.release.supervisor import (
    Action,
    GroupView,
    KillStalled,
    NoteRespawn,
    ReplaceGroup,
    RestartCompactor,
    RestartEdge,
    RestartVisitReader,
    StackView,
    Supervisor,
    SupervisorPolicy,
)
from steadylink.release.workers import probe_socket, reap_children, signal_processes

TICK = 0.25
PROBE_EVERY = 1.0


class EventSink(Protocol):
    def append(
        self,
        kind: str,
        message: str,
        *,
        release: str | None = None,
        severity: Any = "info",
        body: dict[str, Any] | None = None,
    ) -> Any: ...


class SupervisionLoop:
    """Runs the supervisor in a thread of the guard until ``stop``."""

    def __init__(
        self,
        guard: Guard,
        *,
        journal: EventSink | None = None,
        progress: Callable[[str], None] = print,
        clock: Clock | None = None,
        policy: SupervisorPolicy | None = None,
    ) -> None:
        self.guard = guard
        self.journal = journal
        self.progress = progress
        self.supervisor = Supervisor(policy or SupervisorPolicy(), clock or guard.clock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._probed_at = 0.0
        self._groups = GroupReader()

    def start(self) -> SupervisionLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            # a group being started finishes first (the guard refuses new ones once stopping)
            self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            try:
                self.tick()
            except Exception as exc:  # the loop must outlive any one bad look
                self.progress(f"supervisor: a check failed ({type(exc).__name__}: {exc}); carrying on")

    def tick(self) -> list[Action]:
        reap_children()
        self.guard.save_if_unsaved()  # a state the full disk refused, written once it takes writes
        actions = self.supervisor.decide(self.look())
        for action in actions:
            if self._stop.is_set():
                break
            self.act(action)
        return actions

    # looking ---------------------------------------------------------------------

    def look(self) -> StackView:
        guard = self.guard
        with guard.lock:
            edge = guard.edge
            wanted = {guard.state.serving, guard.state.warm_previous} - {None}
            slots = {n: e for n, e in guard.state.slots.items() if e.release in wanted}
        is_edge_running = edge is not None and is_process_running(edge.pid)
        is_edge_answering = is_edge_running and edge is not None and edge.runtime.is_answering()
        groups = self._groups.read([e.pid for e in slots.values()])
        probe = time.monotonic() - self._probed_at >= PROBE_EVERY
        if probe:
            self._probed_at = time.monotonic()
        views = []
        for n, entry in slots.items():
            answer = probe_socket(guard.edge_config.slot_socket(n), timeout=1.0) if probe else None
            view = _group_view(n, entry.release, groups[entry.pid], entry.compactor, answer, probe)
            ages = heartbeat.beat_ages(guard.data_dir, view.worker_pids)
            views.append(replace(view, beat_ages=tuple(ages.items())))
        if probe:  # once a second: the files of workers that are gone
            _forget_beats(guard.data_dir)
        return StackView(
            is_edge_running=is_edge_running,
            is_edge_answering=is_edge_answering,
            groups=tuple(views),
            expected_workers=guard.settings.release.workers,
            is_deploying=read_lock_holder(guard.data_dir) is not None,
            is_visit_reader_running=guard.redirects.is_reader_running() if guard.redirects else None,
            is_visit_reader_stopped=guard.redirects.is_reader_stopped() if guard.redirects else False,
        )

    # acting ----------------------------------------------------------------------

    def act(self, action: Action) -> None:
        started = time.monotonic()
        release = getattr(action, "release", None)
        if isinstance(action, NoteRespawn):
            late = action.is_late_replacement
            kind, level = ("worker_replaced", "info") if late else ("worker_exited", "warning")
            self._record(
                f"supervisor.{kind}", f"{action.release} (slot {action.slot}): {action.why}",
                release, level, {"slot": action.slot, "gone": list(action.gone), "new": list(action.new)},
            )  # fmt: skip
            return
        try:
            done = self._carry_out(action)
        except Exception as exc:
            message = f"could not restart {action.what} ({action.why}): {exc}"
            self._record(
                "supervisor.restart_failed", message, release, "error",
                {"what": action.what, "why": action.why, "error": str(exc)},
            )  # fmt: skip
            return
        self.supervisor.forget(action)
        seconds = time.monotonic() - started
        message = f"restarted {action.what}: {action.why}; {done} in {seconds:.2f} s"
        self._record(
            "supervisor.restarted", message, release, "warning",
            {"what": action.what, "why": action.why, "done": done, "seconds": round(seconds, 3)},
        )  # fmt: skip

    def _carry_out(self, action: Action) -> str:
        guard = self.guard
        if isinstance(action, RestartEdge):
            edge = guard.restart_edge()
            weights = ", ".join(f"slot {n}: {w}" for n, w in sorted(guard.state.weights.items()))
            return f"HAProxy is back (pid {edge.pid}) with the same weights ({weights})"
        if isinstance(action, ReplaceGroup):
            new_slot = guard.replace_group(action.slot, progress=self.progress)
            entry = guard.state.slots[new_slot]
            return f"{action.release} moved from slot {action.slot} to slot {new_slot} (pid {entry.pid})"
        if isinstance(action, KillStalled):
            signal_processes(action.pids, signal.SIGKILL)
            return f"killed process(es) {', '.join(map(str, action.pids))}; granian replaces them"
        if isinstance(action, RestartVisitReader):
            assert guard.redirects is not None
            if action.is_stopped:
                return f"stopped the stopped reader; a new one reads (pid {guard.redirects.replace_reader()})"
            return f"the edge visit reader is back (pid {guard.redirects.ensure_reader()})"
        assert isinstance(action, RestartCompactor)
        pid = guard.restart_compactor(action.slot)
        return f"a new compactor for slot {action.slot} (pid {pid})"

    def _record(
        self, kind: str, message: str, release: str | None, severity: str, body: dict[str, Any]
    ) -> None:
        """Into the journal, whose listener in `up` prints it; said here only without one."""
        if self.journal is not None:
            self.journal.append(kind, message, release=release, severity=severity, body=body)
        else:
            self.progress(f"supervisor: {message}")


def _forget_beats(data_dir: Path) -> None:
    """Remove the beat files of processes that are gone (a worker killed with -9 leaves its file)."""
    with contextlib.suppress(OSError):
        for path in heartbeat.beat_dir(data_dir).iterdir():
            if path.name.isdigit() and not is_process_running(int(path.name)):
                path.unlink(missing_ok=True)


def _group_view(
    slot: int,
    release: str,
    group: GroupProcesses,
    compactor: int | None,
    answer: int | None,
    probed: bool,
) -> GroupView:
    workers = group.workers
    stalled = tuple(p.pid for p in workers if p.is_stopped)
    own = group.compactor
    has_compactor = (own is not None and not own.is_stopped) or (
        compactor is not None and is_process_running(compactor)
    )
    if own is not None and own.is_stopped:
        stalled += (own.pid,)
    leader = next((p for p in group.processes if p.pid == group.leader), None)
    return GroupView(
        slot=slot,
        release=release,
        leader=group.leader,
        is_leader_alive=group.is_leader_alive,
        workers=sum(not p.is_stopped for p in workers),
        stalled=stalled,
        is_leader_stalled=leader is not None and leader.is_stopped,
        has_compactor=has_compactor,
        is_answering=(answer == 200) if probed else None,
        is_visible=group.is_visible,
        worker_pids=tuple(p.pid for p in workers),
    )
