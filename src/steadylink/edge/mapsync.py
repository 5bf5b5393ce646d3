"""Keeps HAProxy's link map equal to the store's plain links, within about a second.

Three ways in, one rule (``edge/linkmap.py``'s ``entry_of``):

- ``write_file`` — the whole map, written atomically before HAProxy starts
  (``up``) and before every reload, since HAProxy reads the file then.
- ``rebuild`` — the whole map through the runtime API, without a reload:
  ``prepare map`` makes an empty new version, ``add map @<version>`` fills it
  in chunks over one connection, and ``commit map`` swaps it in at once. Until
  the commit HAProxy answers from the old version, so a rebuild that fails
  half-way (the socket gone, HAProxy refusing a line) changes nothing and is
  tried again; a request is never dropped. Used when the guard adopts a
  running HAProxy and when HAProxy was restarted by anyone but this sync.
- ``apply_changes`` — the store's change log (``link_changes``, the one the
  worker caches poll): for each changed code the link is read again and its
  entry set (``set map``, or ``add map`` if it was not there), or deleted
  (``del map``). The log position moves only after every change of a batch
  went through, so a batch cut short by a lost socket is applied again in
  full; each runtime command changes one entry atomically.

``tick`` (every ``SYNC_SECONDS`` from the guard's thread) picks the one that
is due. The map holds at most ``limit`` links: a rebuild past it takes the
most visited ones; between rebuilds, new links past it are left to the app.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from steadylink.clock import Clock, SystemClock
from steadylink.edge.linkmap import (
    MapEntry,
    build_add_map,
    build_del_map,
    build_set_map,
    entry_of,
    map_key,
    select_entries,
    write_map_file,
)
from steadylink.edge.runtime import RuntimeClient, RuntimeSession
from steadylink.errors import EdgeError, SteadylinkError
from steadylink.links.store import Store

SYNC_SECONDS = 0.25
# One runtime command must fit HAProxy's buffer (tune.bufsize, 16 kB by default).
_PAYLOAD_BYTES = 12_000
# On PostgreSQL a change-log number can commit after a larger one was seen (as in links/cache.py).
_OVERLAP = 64
_RECENT = 1024
_REBUILD_ABOVE = 9_000
_COMMAND_SECONDS = 2.0
_REBUILD_COMMAND_SECONDS = 60.0
_MISSING = ("", "")

EventFn = Callable[[str, str, str], None]  # kind, message, severity


@dataclass(frozen=True)
class MapStatus:
    size: int
    limit: int
    last_sync: datetime | None
    last_rebuild: datetime | None
    rebuild_seconds: float | None
    error: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "links": self.size,
            "limit": self.limit,
            "last_sync": self.last_sync.isoformat() if self.last_sync else None,
            "last_rebuild": self.last_rebuild.isoformat() if self.last_rebuild else None,
            "rebuild_seconds": self.rebuild_seconds,
            "error": self.error,
        }


class LinkMapSync:
    def __init__(
        self, store: Store, runtime: Callable[[], RuntimeClient], map_file: Path, *, limit: int,
        clock: Clock | None = None, on_event: EventFn | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.runtime = runtime
        self.map_file = map_file
        self.limit = limit
        self.clock = clock or SystemClock()
        self.on_event = on_event or (lambda _kind, _message, _severity: None)
        self.size = 0
        self._seq = 0
        self._file_seq = 0
        self.lock = threading.Lock()  # one of tick, rebuild, or write_file + reload at a time
        self._pid: int | None = None  # the HAProxy worker the map was last made for
        self._recent: OrderedDict[str, MapEntry | None] = OrderedDict()
        self.last_sync: datetime | None = None
        self.last_rebuild: datetime | None = None
        self.rebuild_seconds: float | None = None
        self.error: str | None = None

    # whole map ----------------------------------------------------------------------

    def write_file(self) -> int:
        """Write the whole map file from the store; HAProxy loads it at its next start or reload.

        Hold ``lock`` from here until HAProxy has loaded it, then call ``expect_reload``.
        """
        self._file_seq = self._position()
        try:
            self.size = write_map_file(self.map_file, self._entries())
        except OSError as exc:  # the old file stays whole: it is replaced only once complete
            raise EdgeError(
                f"Cannot write the edge link map {self.map_file} ({exc.strerror or exc}); "
                "HAProxy keeps the map it has."
            ) from exc
        return self.size

    def expect_reload(self) -> None:
        """HAProxy (re)loaded the file just written: its new worker needs the changes since, no rebuild."""
        self._seq = self._file_seq
        self._recent.clear()
        self._pid = None

    def adopt(self, pid: int) -> None:
        """HAProxy ``pid`` loaded the file this sync wrote last."""
        self._pid = pid

    def rebuild(self) -> int:
        """Replace the whole map in the running HAProxy at once; the file too. Return its size."""
        started = time.perf_counter()
        runtime = self.runtime()
        pid = runtime.worker_pid()
        # the file first (what the next start or reload reads), then the same lines to HAProxy
        self.write_file()
        # committing a new version frees the old one's entries: seconds for a million
        with runtime.session(timeout=_REBUILD_COMMAND_SECONDS) as session:
            version = _prepare(session, self.map_file)
            for payload in _chunks(self.map_file):
                session.run_action(f"add map @{version} {self.map_file} <<\n{payload}")
            session.run_action(f"commit map @{version} {self.map_file}")
        self._seq = self._file_seq
        self._recent.clear()
        self._pid = pid
        self.rebuild_seconds = time.perf_counter() - started
        self.last_rebuild = self.last_sync = self.clock.now()
        self.on_event(
            "edge.map_rebuilt",
            f"edge link map rebuilt: {self.size} links in {self.rebuild_seconds:.1f}s",
            "info",
        )
        return self.size

    # changes --------------------------------------------------------------------------

    def apply_changes(self) -> int:
        """Apply the store's changes since the last sync; return how many entries changed."""
        seq, codes = self.store.invalidations_since(max(self._seq - _OVERLAP, 0))
        if len(codes) >= _REBUILD_ABOVE:
            # the store keeps only its last 10,000 changes: a gap this long may have lost some
            return self.rebuild()
        wanted = {code: entry_of(self.store.get_link(code)) for code in dict.fromkeys(codes)}
        todo = {code: entry for code, entry in wanted.items() if self._recent.get(code, _MISSING) != entry}
        changed = 0
        if todo:  # applied already otherwise (the overlap reads recent changes again)
            with self.runtime().session(timeout=_COMMAND_SECONDS) as session:
                for code, entry in todo.items():
                    changed += self._apply(session, code, entry)
                    self._recent[code] = entry
                    self._recent.move_to_end(code)
                    if len(self._recent) > _RECENT:
                        self._recent.popitem(last=False)
        self._seq = max(seq, self._seq)
        self.last_sync = self.clock.now()
        return changed

    def _apply(self, runtime: RuntimeSession, code: str, wanted: MapEntry | None) -> int:
        key = map_key(code)
        if key is None:
            return 0  # a code the map cannot hold was never in it
        if wanted is not None:
            answer = runtime.run(build_set_map(self.map_file, wanted)).strip()
            if not answer:
                return 1
            if "not found" not in answer:
                raise EdgeError(f"HAProxy refused to change {key} in the link map: {answer[:200]}")
            if self.size >= self.limit:
                return 0  # the map is full: the app answers this link
            runtime.run_action(build_add_map(self.map_file, [wanted]))
            self.size += 1
            return 1
        answer = runtime.run(build_del_map(self.map_file, key)).strip()
        if not answer:
            self.size -= 1
            return 1
        if "not found" not in answer:
            raise EdgeError(f"HAProxy refused to remove {key} from the link map: {answer[:200]}")
        return 0

    # the guard's loop ------------------------------------------------------------------

    def tick(self) -> None:
        """One round: a rebuild if HAProxy's worker is new to this sync, else the changes. Never raises."""
        with self.lock:
            self._tick()

    def _tick(self) -> None:
        try:
            pid = self.runtime().worker_pid()
            if self._pid is None:
                self._pid = pid  # the worker of our own start or reload: it read our file
            if pid != self._pid:
                self.rebuild()
            else:
                self.apply_changes()
            self.error = None
        except SteadylinkError as exc:
            self._failed(exc.message)
        except Exception as exc:  # a store driver's own error: said, and tried again next tick
            self._failed(f"{type(exc).__name__}: {exc}")

    def status(self) -> MapStatus:
        return MapStatus(
            self.size, self.limit, self.last_sync, self.last_rebuild, self.rebuild_seconds, self.error
        )

    def _failed(self, why: str) -> None:
        message = f"edge link map sync failed ({why}); HAProxy keeps the map it has, retrying"
        if message != self.error:  # once per kind of failure, not four times a second
            self.on_event("edge.map_sync_failed", message, "warning")
        self.error = message

    def _position(self) -> int:
        """The change log's newest number, read before the links (a change meanwhile is applied twice)."""
        seq, _ = self.store.invalidations_since(0)
        return seq

    def _entries(self) -> Iterator[MapEntry]:
        most_visited = self.store.count_links() > self.limit
        # a few more rows than the bound: some plain links are not map-safe
        links = self.store.plain_links(self.limit + 1000, most_visited=most_visited)
        return select_entries(links, self.limit)


def _prepare(session: RuntimeSession, map_file: Path) -> int:
    answer = session.run(f"prepare map {map_file}").strip()
    if not answer.startswith("New version created:"):
        raise EdgeError(f"HAProxy refused to prepare a new link map: {answer[:200]}")
    return int(answer.rsplit(":", 1)[1])


def _chunks(map_file: Path) -> Iterator[str]:
    """The map file's lines, a runtime command's worth at a time."""
    chunk: list[str] = []
    size = 0
    with open(map_file, encoding="ascii") as lines:
        for line in lines:
            if chunk and size + len(line) > _PAYLOAD_BYTES:
                yield "".join(chunk)
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
    if chunk:
        yield "".join(chunk)
