"""What runs in a worker group, read from ``/proc``: its processes, their state and memory.

A worker group is one release's ``steadylink serve`` started in a session of
its own, so every process it makes — granian's leader, the workers it forks
(and re-forks: ``--respawn-failed-workers`` replaces a worker that exits, and
the leader's PID never changes), the visit compactor — shares the leader's
process group id. Watching the leader alone misses a worker that crash-loops
behind it; ``read_group`` lists them all.

Why ``/proc`` and not psutil: one read of ``/proc/<pid>/stat`` gives everything
the guard decides on (process group, parent, state, start time, resident
memory), the guard already reads ``/proc`` for HAProxy, and psutil would be a
compiled dependency in every release's venv for what is ~60 lines here. Where
there is no ``/proc`` (macOS), ``read_group`` sees the leader only: restarts
and memory are then not judged, and the checks that need them say nothing
rather than something wrong.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

PROC = Path("/proc")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# Process states (proc(5)): Z zombie, X dead, T stopped by a signal (SIGSTOP).
GONE_STATES = frozenset("ZX")
STOPPED_STATE = "T"


@dataclass(frozen=True)
class ProcessInfo:
    """One process of a group as ``/proc/<pid>/stat`` shows it."""

    pid: int
    ppid: int
    pgid: int
    state: str
    start_ticks: int
    rss_bytes: int
    is_compactor: bool = False

    @property
    def is_stopped(self) -> bool:
        return self.state == STOPPED_STATE


@dataclass(frozen=True)
class GroupProcesses:
    """Every live process of the group led by ``leader`` (zombies left out)."""

    leader: int
    processes: tuple[ProcessInfo, ...]
    is_visible: bool = True  # False without /proc: only the leader's liveness is known

    @property
    def is_leader_alive(self) -> bool:
        return any(p.pid == self.leader for p in self.processes)

    @property
    def workers(self) -> tuple[ProcessInfo, ...]:
        """The serving processes: everything but the leader and the compactor."""
        return tuple(p for p in self.processes if p.pid != self.leader and not p.is_compactor)

    @property
    def compactor(self) -> ProcessInfo | None:
        return next((p for p in self.processes if p.is_compactor), None)

    @property
    def rss_bytes(self) -> int | None:
        """Resident memory of every process of the group, summed (None when not visible)."""
        return sum(p.rss_bytes for p in self.processes) if self.is_visible else None

    @property
    def is_empty(self) -> bool:
        return not self.processes


def parse_stat(text: str, *, page_size: int = _PAGE) -> ProcessInfo | None:
    """A ``/proc/<pid>/stat`` line; None for a zombie or a line that does not parse.

    The command name (field 2) may hold spaces and parentheses, so the fields
    are counted from its last ``)``.
    """
    head, _, tail = text.rpartition(")")
    fields = tail.split()
    if not head or len(fields) < 22:
        return None
    try:
        pid = int(head.split("(", 1)[0])
        state, ppid, pgid = fields[0], int(fields[1]), int(fields[2])
        start_ticks, rss_pages = int(fields[19]), int(fields[21])
    except ValueError:
        return None
    if state in GONE_STATES:
        return None
    return ProcessInfo(pid, ppid, pgid, state, start_ticks, rss_pages * page_size)


def read_group(leader: int, *, proc: Path = PROC) -> GroupProcesses:
    """The processes whose process group is ``leader``'s pid (its session's group)."""
    return read_groups([leader], proc=proc)[leader]


def read_groups(leaders: Iterable[int], *, proc: Path = PROC) -> dict[int, GroupProcesses]:
    """``read_group`` for several groups with one pass over ``/proc`` (~300 small reads)."""
    wanted = set(leaders)
    if not proc.is_dir():
        return {n: GroupProcesses(n, _leader_only(n), is_visible=False) for n in wanted}
    found: dict[int, list[ProcessInfo]] = {n: [] for n in wanted}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            info = parse_stat((entry / "stat").read_text())
            if info is not None and info.pgid in wanted:
                found[info.pgid].append(_mark_compactor(info, proc))
    return {n: GroupProcesses(n, tuple(ps)) for n, ps in found.items()}


class GroupReader:
    """``read_groups`` for a loop that looks several times a second, at a fraction of the cost.

    A full pass over ``/proc`` reads every process's ``stat``: four times a
    second that was most of the guard's own CPU. So only the first look is a
    full pass (it also finds orphans of a leader that died before the guard
    started). Then each look reads the members found before — enough to see
    one stop, hang or exit within a tick — and every ``discover_every``
    seconds also the leader's children (``/proc/<leader>/task/*/children``),
    where granian's new workers and the compactor appear. Without that file
    (a kernel built without it), every discovery is a full pass.
    """

    def __init__(
        self, *, discover_every: float = 1.0, proc: Path = PROC, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.discover_every = discover_every
        self.proc = proc
        self._clock = clock
        self._discovered_at: float | None = None
        self._last: dict[int, GroupProcesses] = {}

    def read(self, leaders: Iterable[int]) -> dict[int, GroupProcesses]:
        wanted = set(leaders)
        now = self._clock()
        if wanted != set(self._last) or not self.proc.is_dir():
            self._discovered_at = now
            self._last = read_groups(wanted, proc=self.proc)
            return self._last
        if self._discovered_at is not None and now - self._discovered_at < self.discover_every:
            self._last = {n: self._reread(n, {p.pid: p for p in g.processes}) for n, g in self._last.items()}
            return self._last
        self._discovered_at = now
        found: dict[int, GroupProcesses] = {}
        for leader, group in self._last.items():
            children = self._children(leader)
            if children is None:
                self._last = read_groups(wanted, proc=self.proc)
                return self._last
            known = {p.pid: p for p in group.processes}
            found[leader] = self._reread(leader, known, {leader, *children} - set(known))
        self._last = found
        return found

    def _reread(self, leader: int, known: dict[int, ProcessInfo], new: Iterable[int] = ()) -> GroupProcesses:
        members = []
        for pid in [*known, *new]:
            with contextlib.suppress(OSError):
                info = parse_stat((self.proc / str(pid) / "stat").read_text())
                if info is None or info.pgid != leader:
                    continue
                before = known.get(pid)
                if before is not None and before.start_ticks == info.start_ticks:
                    members.append(replace(info, is_compactor=before.is_compactor))
                else:  # new, or a reused pid: another process
                    members.append(_mark_compactor(info, self.proc))
        return GroupProcesses(leader, tuple(members))

    def _children(self, leader: int) -> list[int] | None:
        """The pids the leader's threads forked; [] when it is gone, None without the file."""
        try:
            tasks = list((self.proc / str(leader) / "task").iterdir())
        except OSError:
            return []
        children: list[int] = []
        for task in tasks:
            try:
                children += [int(pid) for pid in (task / "children").read_text().split()]
            except FileNotFoundError:
                return None
            except (OSError, ValueError):
                continue
        return children


def _mark_compactor(info: ProcessInfo, proc: Path) -> ProcessInfo:
    """The compactor is the group's ``steadylink compact`` (worker contract: ``serve`` starts it)."""
    try:
        argv = (proc / str(info.pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return info
    if b"steadylink" in argv and b"compact" in argv:
        return ProcessInfo(**{**info.__dict__, "is_compactor": True})
    return info


def _leader_only(leader: int) -> tuple[ProcessInfo, ...]:
    try:
        os.kill(leader, 0)
    except ProcessLookupError:
        return ()
    except PermissionError:
        pass
    return (ProcessInfo(leader, 0, leader, "S", 0, 0),)


def has_members(pgid: int) -> bool:
    """Whether any process of the group still exists (zombies included: signal 0 reaches them)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_group_gone(pgid: int, *, proc: Path = PROC) -> bool:
    """No live process is left in the group (zombies waiting for their parent do not count)."""
    group = read_group(pgid, proc=proc)
    return group.is_empty if group.is_visible else not has_members(pgid)


class RestartCount:
    """Worker exits in a group since the first look: each worker that was there and is gone.

    granian replaces a worker that exits with a new process, so a crash shows
    as a worker identity (pid and start time) that disappears between looks.
    A worker that exits and is not replaced counts the same.
    """

    def __init__(self, first: GroupProcesses) -> None:
        self._seen = _identities(first)
        self.restarts = 0

    def add(self, group: GroupProcesses) -> int:
        now = _identities(group)
        self.restarts += len(self._seen - now)
        self._seen = now
        return self.restarts


def _identities(group: GroupProcesses) -> set[tuple[int, int]]:
    return {(p.pid, p.start_ticks) for p in group.workers}
