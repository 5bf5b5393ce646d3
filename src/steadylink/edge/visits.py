"""Edge visits: HAProxy's log lines turned into visit-spool lines, each counted exactly once.

HAProxy numbers the visits it answers (``edge/redirects.py``: ``<pid> <seq>
/<code>\\t<referer>\\t<user-agent>``, headers JSON-escaped). ``VisitTally``
takes whole chunks of those lines, keeps one visit per ``(pid, seq)`` —
a line HAProxy sends again after the reader reconnected is dropped, not
counted twice — and turns each into the spool line the workers write
(``links/clicks.py``: referrer host, user-agent family, bot flag, by the same
functions), so the compactor folds edge and app visits alike.

Loss is never silent. Per HAProxy process the tally knows the highest
number contiguous from 1 (``floor``) and the numbers seen above it; a gap
still open one flush later (HAProxy's ring was full, or the reader was down
longer than the ring holds) is counted in ``lost`` and closed. The reader
keeps ``floor`` and ``lost`` in its state file, so visits it had read but not
yet written when it was killed show up as lost after its restart.

Pure: no sockets, no files, no clock of its own; ``edge/visitreader.py``
feeds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from steadylink.links.agents import classify_agent
from steadylink.links.clicks import referrer_host
from steadylink.links.spool import visit_line_tail

# More lines than HAProxy's ring can hold (edge/redirects.py RING_BYTES), so more
# than it could ever send twice.
_REPLAY_WINDOW = 1_000_000
# Distinct (referrer, user agent) pairs remembered, as in links/clicks.py.
_MEMO_LIMIT = 10_000


@dataclass
class ProcessVisits:
    """The visits of one HAProxy process seen so far."""

    floor: int = 0  # every number up to here was counted (or declared lost)
    ahead: set[int] = field(default_factory=set)
    stale_gap: int | None = None  # the floor a gap was open at, at the last flush
    idle_flushes: int = 0


@dataclass
class VisitTally:
    """Counts edge visits; ``take`` hands the spool lines over once a flush."""

    day: str
    processes: dict[str, ProcessVisits] = field(default_factory=dict)
    received: int = 0
    duplicates: int = 0
    damaged: int = 0
    lost: int = 0
    _pending: list[str] = field(default_factory=list)
    _rest: dict[str, str] = field(default_factory=dict)  # "<referer>\t<user-agent>" -> spool line tail
    _partial: bytes = b""

    def feed(self, chunk: bytes) -> int:
        """Count the whole lines of ``chunk`` (a line cut at its end waits for the next); return visits.

        On the core HAProxy needs too, at up to ~100,000 lines a second: the usual
        line — the next number of the process before it — costs one prefix
        comparison, two finds and one dict lookup; anything else (late, repeated,
        another process) is parsed in full and goes through ``_is_new``.
        """
        data = self._partial + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return 0
        self._partial = data[cut + 1 :]
        counted = damaged = 0
        pending = self._pending
        rests = self._rest
        processes = self.processes
        last_pid = ""
        process = ProcessVisits()
        for line in data[:cut].decode("ascii", "replace").split("\n"):
            # The usual line is the next number of the process before it: one
            # prefix to compare, no parsing of the head.
            expected = f"{last_pid} {process.floor + 1} /"
            if last_pid and not process.ahead and line.startswith(expected):
                process.floor += 1
                body = line[len(expected) :]
            else:
                space = line.find(" ")
                number_end = line.find(" ", space + 1)
                number = line[space + 1 : number_end]
                is_path = line[number_end + 1 : number_end + 2] == "/"
                if number == "-" and space > 0:
                    continue  # logged before any rule ran (a request cut off): no edge answer
                if space <= 0 or number_end < 0 or not number.isdigit() or not is_path:
                    damaged += 1
                    continue
                pid, seq = line[:space], int(number)
                if pid != last_pid:
                    found = processes.get(pid)
                    process = found if found is not None else processes.setdefault(pid, ProcessVisits())
                    process.idle_flushes = 0
                    last_pid = pid
                if seq == process.floor + 1 and not process.ahead:
                    process.floor = seq
                elif not self._is_new(process, seq):
                    self.duplicates += 1
                    continue
                body = line[number_end + 2 :]
            # body: <code>\t<referer>\t<user-agent>
            tab = body.find("\t")
            if tab < 0 or body.count("\t") != 2:
                damaged += 1  # numbered, so counted as seen: HAProxy does not send it again
                continue
            key = body[tab + 1 :]
            rest = rests.get(key)
            if rest is None:
                rest = self._remember(key)
            pending.append(body[:tab] + rest)
            counted += 1
        self.received += counted
        self.damaged += damaged
        return counted

    def take(self, day: str) -> list[str]:
        """The spool lines since the last take; gaps open since the last take count as lost."""
        if day != self.day:
            self.day = day
            self._rest = {}  # its lines carry the day
        self._close_old_gaps()
        batch, self._pending = self._pending, []
        return batch

    def _is_new(self, process: ProcessVisits, seq: int) -> bool:
        if seq <= process.floor - _REPLAY_WINDOW:
            # far below anything the ring can replay: a new process that got an old pid
            process.floor = 0
            process.ahead.clear()
            process.stale_gap = None
        if seq <= process.floor or seq in process.ahead:
            return False
        if seq == process.floor + 1:
            process.floor = seq
            ahead = process.ahead
            while ahead and process.floor + 1 in ahead:
                process.floor += 1
                ahead.discard(process.floor)
        else:
            process.ahead.add(seq)
        return True

    def _close_old_gaps(self) -> None:
        for pid, process in list(self.processes.items()):
            if not process.ahead:
                process.stale_gap = None
                process.idle_flushes += 1
                if process.idle_flushes > 3600 and process.floor:  # an old HAProxy process, long gone
                    del self.processes[pid]
                continue
            if process.stale_gap == process.floor:
                # open for a whole flush interval: those lines are not coming
                numbers = sorted(process.ahead)
                self.lost += numbers[-1] - process.floor - len(numbers)
                process.floor = numbers[-1]
                process.ahead.clear()
                process.stale_gap = None
            else:
                process.stale_gap = process.floor

    def _remember(self, headers: str) -> str:
        if len(self._rest) >= _MEMO_LIMIT:
            self._rest.clear()
        referer, agent = headers.split("\t")
        family, is_bot = classify_agent(_header(agent))
        host = referrer_host(_header(referer))
        rest = self._rest[headers] = visit_line_tail(self.day, host, family, is_bot)
        return rest

    # the reader's state file ---------------------------------------------------------

    @property
    def partial(self) -> bytes:
        """The start of a line whose end has not come yet."""
        return self._partial

    def state(self) -> dict[str, object]:
        return {
            "floors": {pid: p.floor for pid, p in self.processes.items()},
            "received": self.received,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "damaged": self.damaged,
        }

    def restore(self, state: dict[str, object]) -> None:
        """Continue after a restart: numbers at or below a saved floor were counted before."""
        floors = state.get("floors")
        if isinstance(floors, dict):
            for pid, floor in floors.items():
                self.processes[str(pid)] = ProcessVisits(floor=int(floor))
        for name in ("received", "lost", "duplicates", "damaged"):
            value = state.get(name)
            if isinstance(value, int):
                setattr(self, name, value)


def _header(escaped: str) -> str | None:
    """A header value as HAProxy's ``json(ascii)`` wrote it, unescaped; None when absent ("-")."""
    if escaped == "-" or not escaped:
        return None
    if "\\" not in escaped:
        return escaped
    try:
        value = json.loads(f'"{escaped}"')
    except ValueError:
        return escaped.replace("\\/", "/")
    return str(value)
