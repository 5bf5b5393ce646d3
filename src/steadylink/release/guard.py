"""The guard: supervises HAProxy and each release's worker group.

It owns the slot table (which release serves on which HAProxy slot, with
which weight), persisted in ``<data_dir>/run/guard.json`` so that a guard that
restarts adopts the HAProxy and workers that kept serving without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from steadylink.clock import Clock, SystemClock
from steadylink.edge import (
    EdgeConfig,
    EdgeProcess,
    EdgeRedirects,
    RuntimeClient,
    SlotSetting,
    adopt_edge,
    check_certificates,
    ensure_port_free,
    reload_edge,
    restart_edge,
    start_edge,
    stop_edge,
)
from steadylink.edge.config import fallback_slot
from steadylink.edge.listeners import HeldListeners
from steadylink.edge.process import read_pid
from steadylink.errors import Conflict, NotFound, ReleaseError
from steadylink.links.sql_store import open_store
from steadylink.release.history import list_records, mark_rolled_back
from steadylink.release.processes import is_group_gone, read_groups
from steadylink.release.workers import (
    SocketLease,
    WorkerSpec,
    is_alive,
    private_socket,
    probe_socket,
    publish_socket,
    start_compactor,
    start_workers,
    stop_workers,
    wait_until_healthy,
)
from steadylink.settings import Settings
from steadylink.watch.journal import Journal

FULL_WEIGHT = 100
# The listening sockets' descriptors a guard keeps open for itself across os.execv (SIGUSR2).
HELD_LISTENERS_ENV = "STEADYLINK_HELD_LISTENERS"
# A group may take this long to answer after it started (one that exits fails at
# once); on a 2-core machine under a deploy's builds and full load, starts of
# 30-37 s were seen.
START_TIMEOUT = 120.0
REPLACE_TIMEOUT = START_TIMEOUT  # a replacement group, the serving release at start, a rollback
ProgressFn = Callable[[str], None]
STATE_FILE = "guard.json"


@dataclass
class SlotEntry:
    release: str
    pid: int
    python: str
    # The slot socket this group published (see workers.publish_socket): removed
    # on retire only while it is still this file.
    socket_device: int | None = None
    socket_inode: int | None = None
    # A compactor the guard started for this group after the group's own one died.
    compactor: int | None = None

    def lease(self, path: Path) -> SocketLease | None:
        if self.socket_device is None or self.socket_inode is None:
            return None
        return SocketLease(path, self.socket_device, self.socket_inode)


@dataclass
class GuardState:
    slots: dict[int, SlotEntry] = field(default_factory=dict)
    weights: dict[int, int] = field(default_factory=dict)
    serving: str | None = None
    warm_previous: str | None = None
    pythons: dict[str, str] = field(default_factory=dict)
    ops_port: int | None = None
    guard_pid: int | None = None
    # the numbers of the front door's listening sockets in HAProxy's master (edge/listeners.py):
    # an adopting guard renders the same `bind fd@N` lines for a reload
    edge_fds: list[int] = field(default_factory=list)

    def slot_of(self, release: str) -> int | None:
        return next((n for n, e in self.slots.items() if e.release == release), None)

    def to_json(self) -> dict[str, object]:
        body = asdict(self)
        body["slots"] = {str(n): asdict(e) for n, e in self.slots.items()}
        body["weights"] = {str(n): w for n, w in self.weights.items()}
        return body

    @classmethod
    def from_json(cls, body: dict[str, object]) -> GuardState:
        slots = body.get("slots") or {}
        weights = body.get("weights") or {}
        assert isinstance(slots, dict) and isinstance(weights, dict)
        pythons = body.get("pythons") or {}
        assert isinstance(pythons, dict)
        serving, warm, port, gpid = (
            body.get(k) for k in ("serving", "warm_previous", "ops_port", "guard_pid")
        )
        fds = body.get("edge_fds") or []
        assert isinstance(fds, list)
        return cls(
            slots={int(n): SlotEntry(**e) for n, e in slots.items()},
            weights={int(n): int(w) for n, w in weights.items()},
            serving=str(serving) if serving else None,
            warm_previous=str(warm) if warm else None,
            pythons={str(k): str(v) for k, v in pythons.items()},
            ops_port=int(str(port)) if port else None,
            guard_pid=int(str(gpid)) if gpid else None,
            edge_fds=[int(fd) for fd in fds],
        )


def edge_config_of(settings: Settings, run_dir: Path, *, slots: int = 4) -> EdgeConfig:
    """HAProxy's config from the settings (``[edge]``, the front door's host and port)."""
    return EdgeConfig(
        run_dir=run_dir, host=settings.host, port=settings.port, slots=slots,
        tls_certs=settings.edge.tls_cert, tls_port=settings.edge.tls_port,
        hsts_seconds=settings.edge.hsts_seconds, edge_redirects=settings.edge.redirects,
        redirect_status=settings.links.redirect_status,
    )  # fmt: skip


def run_dir_of(data_dir: Path) -> Path:
    return data_dir / "run"


def read_state(data_dir: Path) -> GuardState | None:
    path = run_dir_of(data_dir) / STATE_FILE
    try:
        return GuardState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, AssertionError) as exc:
        raise ReleaseError(f"{path} is damaged ({exc}); stop the guard and remove it.") from exc


def _say_event(kind: str, message: str, severity: str) -> None:
    print(f"{severity}: {message} [{kind}]", file=sys.stderr, flush=True)


class Guard:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        slots: int = 4,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.clock = clock or SystemClock()
        self.data_dir = settings.data_dir.resolve()
        self.run_dir = run_dir_of(self.data_dir)
        self.edge_config = edge_config_of(settings, self.run_dir, slots=slots)
        self.state = read_state(self.data_dir) or GuardState()
        self.edge: EdgeProcess | None = None
        # the front door's listening sockets, held here so that clients wait instead of being
        # refused while HAProxy is restarted; None while HAProxy runs on sockets of its own
        # (an adopted one, until it is started again)
        self.listeners: HeldListeners | None = None
        # plain links answered by HAProxy itself (edge/redirector.py); None when edge.redirects is off
        self.redirects: EdgeRedirects | None = None
        # where map rebuilds and failed syncs are told: `up` points it at the journal
        self.on_edge_event: Callable[[str, str, str], None] = _say_event
        self.lock = threading.RLock()
        self.is_stopping = False  # set by stop(): nothing new may start after it
        self.unsaved = False  # run/guard.json refused a write; saved again by save_if_unsaved

    # lifecycle -------------------------------------------------------------

    def start(self, *, progress: ProgressFn = print) -> bool:
        """Adopt what still runs, or start HAProxy and the serving release. True if adopted.

        The serving release is a built release folder, registered before (``release/first.py``
        builds the first one): never the installed package.
        """
        release = self.state.serving
        if release is None or not Path(self.state.pythons.get(release, "/nonexistent")).exists():
            raise ReleaseError("No built release to serve; `steadylink up` builds the first one.")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ensure_port_free(self.settings.ops_host, self.settings.ops_port)
        check_certificates(self.edge_config.tls_certs)
        self.listeners = self._inherited_listeners()
        self.redirects = self._edge_redirects()
        self.edge = adopt_edge(self.edge_config)
        if self.edge is not None and self._live_slots() and self.state.slot_of(release) is not None:
            self._prune_dead_slots()
            progress(f"adopted HAProxy (pid {self.edge.pid}) and {len(self.state.slots)} release(s)")
            self._adopt_listen_fds(progress)
            self._move_fallback(self.edge.runtime)
            self._save()
            if self.redirects is not None:
                self.redirects.adopted()
                self.redirects.start()
            return True
        if self.edge is not None:
            stop_edge(self.edge)
        for entry in self.state.slots.values():
            # left by a guard that died with HAProxy: they would serve on, unseen,
            # and a granian stopping later deletes the socket it bound
            progress(f"stopping {entry.release} (pid {entry.pid}), left by an earlier guard")
            self._stop_group(entry)
        self.state.slots.clear()
        self.state.weights.clear()
        self.state.warm_previous = None
        if self.redirects is not None:
            progress(f"edge link map: {self.redirects.prepare()} plain links")
        self._hold_listeners()
        self.edge = start_edge(self.edge_config, keep_state=False)
        if self.redirects is not None:
            self.redirects.start()
        progress(f"HAProxy listening on {self.settings.host}:{self.settings.port} (pid {self.edge.pid})")
        slot = self.launch(release, progress=progress, timeout=REPLACE_TIMEOUT)
        self.set_traffic({slot: FULL_WEIGHT})
        self.state.serving = release
        self._save()
        return False

    def stop(self, *, progress: ProgressFn = print) -> None:
        """Stop every worker group and HAProxy; nothing is left behind."""
        with self.lock:
            self.is_stopping = True
            for slot, entry in list(self.state.slots.items()):
                progress(f"stopping {entry.release} (pid {entry.pid})")
                self._stop_group(entry, self.edge_config.slot_socket(slot))
                del self.state.slots[slot]
            self.state.weights.clear()
            self.state.warm_previous = None
            if self.redirects is not None:
                self.redirects.stop(stop_reader=False)
            if self.edge is not None:
                stop_edge(self.edge)
                self.edge = None
            if self.listeners is not None:
                self.listeners.close()
                self.listeners = None
            if self.redirects is not None:
                self.redirects.stop_reader()  # after HAProxy: the last visits are in
                self.redirects.close()
            self._save()

    def let_go(self, *, progress: ProgressFn = print) -> None:
        """Let go of everything without stopping what serves: for a guard about to execute
        itself again (``up`` on SIGUSR2), whose next self adopts HAProxy, the workers and the
        visit reader. HAProxy's master holds the listening sockets meanwhile."""
        with self.lock:
            self.is_stopping = True  # nothing new starts from here
            if self.redirects is not None:
                self.redirects.stop(stop_reader=False)
                self.redirects.close()
            if self.listeners is not None:
                # kept open across the execution: the next guard holds them from its first
                # moment, whatever ptrace rules say about copying them from HAProxy
                os.environ[HELD_LISTENERS_ENV] = ",".join(map(str, self.listeners.fds))
                self.listeners = None
            self._save()
        progress("the guard lets go; HAProxy and the workers serve on")

    # slots -------------------------------------------------------------------

    def launch(
        self,
        release: str,
        *,
        progress: ProgressFn = print,
        database: str | None = None,
        timeout: float = START_TIMEOUT,
    ) -> int:
        """Start ``release`` on a free slot (weight 0) and wait until it is ready."""
        with self.lock:
            if self.is_stopping:
                raise ReleaseError("The guard is stopping; nothing new is started.")
            slot = self._free_slot()
            python = Path(self.state.pythons[release])
            public = self.edge_config.slot_socket(slot)
            # The group binds a path of its own; it becomes the slot's socket once ready.
            private = private_socket(public, secrets.token_hex(4))
            spec = self.worker_spec(release, python, private, database)
            pid = start_workers(spec)
            self.state.slots[slot] = SlotEntry(release, pid, str(python))
            self.state.weights[slot] = 0
            self._save()
        progress(f"starting {release} on slot {slot} (pid {pid})")
        try:
            wait_until_healthy(spec, pid, clock=self.clock, timeout=timeout)
            lease = publish_socket(private, public)
        except (ReleaseError, OSError) as exc:
            self.retire(slot)
            private.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise ReleaseError(f"Release {release} could not take slot {slot}'s socket: {exc}") from exc
            raise
        with self.lock:
            entry = self.state.slots.get(slot)
            if entry is None:  # stop() ran meanwhile and stopped it
                raise ReleaseError(f"Release {release} was stopped while it started.")
            entry.socket_device, entry.socket_inode = lease.device, lease.inode
            self._save()
        return slot

    def worker_spec(
        self, release: str, python: Path, socket: Path, database: str | None = None
    ) -> WorkerSpec:
        return WorkerSpec(
            release_id=release,
            python=python,
            socket=socket,
            data_dir=self.data_dir,
            database=database or self.settings.database_url,
            workers=self.settings.release.workers,
            extra_env=(("STEADYLINK_BASE_URL", self.settings.base_url),),
            # one log per slot, whatever path the group binds first
            log=socket.with_name(socket.name.split(".", 1)[0] + ".log"),
        )

    def set_traffic(self, weights: dict[int, int]) -> None:
        """Give slots their weights in one go (runtime API: no reload, no dropped request)."""
        runtime = self._runtime()
        with self.lock:
            for slot, weight in sorted(weights.items(), key=lambda kv: -kv[1]):
                if weight > 0:
                    runtime.set_state(slot, "ready")
                runtime.set_weight(slot, weight)
                self.state.weights[slot] = weight
            self._move_fallback(runtime)
            self._save()

    def _move_fallback(self, runtime: RuntimeClient) -> None:
        """The serving slot's fallback server ready, the others not (``edge/config.py``)."""
        runtime.set_fallback(fallback_slot(self.state.weights), self.edge_config.slots)

    def retire(self, slot: int) -> None:
        """Take a slot out of traffic and stop its workers."""
        runtime = self._runtime()
        with self.lock:
            runtime.set_weight(slot, 0)
            runtime.set_state(slot, "maint")
            entry = self.state.slots.pop(slot, None)
            self.state.weights.pop(slot, None)
            self._move_fallback(runtime)
            self._save()
        if entry is not None:
            self._stop_group(entry, self.edge_config.slot_socket(slot))

    # supervision (release/supervision.py decides; these act) ---------------------

    def restart_edge(self) -> EdgeProcess:
        """Start HAProxy again with the slot weights and states the guard holds."""
        with self.lock:
            if self.is_stopping:
                raise ReleaseError("The guard is stopping; HAProxy is not started again.")
            initial = {
                n: SlotSetting(weight=w, state="ready" if w > 0 else "drain")
                for n, w in self.state.weights.items()
                if n in self.state.slots
            }
            # an adopted HAProxy whose sockets the guard could not copy: they go with it,
            # what is left of it is stopped, and from now on the guard holds the sockets
            if self.listeners is None and self.edge is not None and read_pid(self.edge.config) is not None:
                stop_edge(self.edge, graceful=False)
            self._hold_listeners()  # the new HAProxy inherits the guard's own descriptors
            config = dataclasses.replace(self.edge_config, initial=initial)
            self.edge = restart_edge(self.edge, config)
            return self.edge

    def _hold_listeners(self) -> None:
        """Open the front door's sockets (Conflict naming a taken port); HAProxy inherits them."""
        if self.listeners is None:
            config = self.edge_config
            ports = config.listen_ports
            self.listeners = HeldListeners.open(config.host, ports)
        self.edge_config = dataclasses.replace(self.edge_config, listen_fds=self.listeners.fds)
        self.state.edge_fds = list(self.listeners.fds)
        self._save()

    def _inherited_listeners(self) -> HeldListeners | None:
        """The sockets a guard that executed itself again (SIGUSR2) kept open for this one."""
        inherited = os.environ.pop(HELD_LISTENERS_ENV, "")
        config = self.edge_config
        ports = config.listen_ports
        try:
            numbers = [int(fd) for fd in inherited.split(",")] if inherited else []
            return HeldListeners.inherited(numbers, config.host, ports) if numbers else None
        except (OSError, ValueError):
            return None  # not the front door's (its ports changed): the usual ways apply

    def _adopt_listen_fds(self, progress: ProgressFn) -> None:
        """An adopted HAProxy keeps the sockets its master inherited; a reload names the same ones.

        The guard takes copies of them, so that if this HAProxy dies clients wait for the
        next one instead of being refused; where the system refuses, it says so and goes on.
        """
        config = self.edge_config
        ports = config.listen_ports
        fds = tuple(self.state.edge_fds) if len(self.state.edge_fds) == len(ports) else ()
        self.edge_config = dataclasses.replace(config, listen_fds=fds)
        if not fds or self.edge is None or self.listeners is not None:
            return
        try:
            self.listeners = HeldListeners.take_from(self.edge.pid, fds, config.host, ports)
        except OSError as exc:
            progress(
                f"the front door's sockets stay HAProxy's alone ({exc}): if it dies, clients are "
                "refused for the moment its restart takes"
            )

    def replace_group(self, slot: int, *, progress: ProgressFn = print) -> int:
        """Start the slot's release on a free slot, move the weight there, stop the old group."""
        with self.lock:
            entry = self.state.slots[slot]
            weight = self.state.weights.get(slot, 0)
        # the old group still serves meanwhile (orphans, or the workers left)
        new_slot = self.launch(entry.release, progress=progress)
        self.set_traffic({new_slot: weight, slot: 0})
        self.retire(slot)
        return new_slot

    def restart_compactor(self, slot: int) -> int:
        with self.lock:
            entry = self.state.slots[slot]
            spec = self.worker_spec(entry.release, Path(entry.python), self.edge_config.slot_socket(slot))
            entry.compactor = start_compactor(spec, entry.pid)
            self._save()
            return entry.compactor

    def _stop_group(self, entry: SlotEntry, socket: Path | None = None) -> None:
        """The whole group and any compactor started for it; the slot's socket if still its own."""
        stop_workers(entry.pid)
        if entry.compactor is not None:
            stop_workers(entry.compactor, timeout=5.0)
        if socket is not None and (lease := entry.lease(socket)) is not None:
            lease.remove()

    def rollback(
        self, target: str | None = None, *, progress: ProgressFn = print, actor: str | None = None
    ) -> str:
        """Send all traffic back to ``target`` (default: the previous good release).

        With ``actor`` (an operator's rollback, not a deploy's own), the release rolled back
        from is recorded as rolled back and the journal says who did it.
        """
        with self.lock:
            target = target or self.state.warm_previous or self._previous_good()
            if target is None:
                raise NotFound("There is no earlier release to roll back to.")
            serving_slot = self.state.slot_of(target)
            if (
                target == self.state.serving
                and serving_slot is not None
                and self.state.weights.get(serving_slot)
            ):
                raise Conflict(f"{target} is already serving.")
            if target not in self.state.pythons or not Path(self.state.pythons[target]).exists():
                raise NotFound(f"Release {target} is not kept on this machine; deploy it again.")
            slot = self.state.slot_of(target)
        if slot is None or probe_socket(self.edge_config.slot_socket(slot)) != 200:
            progress(f"{target} is not warm; starting it from its kept directory")
            slot = self.launch(target, progress=progress, timeout=REPLACE_TIMEOUT)
        others = {n: 0 for n in self.state.slots if n != slot}
        self.set_traffic({slot: FULL_WEIGHT, **others})
        with self.lock:
            bad = self.state.serving
            self.state.serving = target
            self.state.warm_previous = None
            self._save()
        progress(f"all traffic on {target}")
        if actor is not None and bad is not None and bad != target:
            self._record_rollback(bad, target, actor)
        for n in others:
            entry = self.state.slots.get(n)
            if entry is not None and entry.release == bad:
                self.retire(n)
        return target

    def reload_edge(self) -> float:
        """Reload HAProxy (a renewed certificate, a new config) without dropping a request."""
        check_certificates(self.edge_config.tls_certs)
        started = self.clock.monotonic()
        with self.lock:
            edge = self.edge
            if edge is None:
                raise ReleaseError("HAProxy is not running; start the guard with `steadylink up`.")

            def do_reload() -> None:
                self.edge = reload_edge(edge, self.edge_config)
                # an HAProxy started before the fallback servers existed gets them with this config
                self._move_fallback(self.edge.runtime)

            if self.redirects is not None:
                self.redirects.reload(do_reload)
            else:
                do_reload()
        return self.clock.monotonic() - started

    def record_ops_port(self, port: int) -> None:
        """Where the CLI finds this guard's ops API (saved in ``run/guard.json``)."""
        with self.lock:
            self.state.ops_port = port
            self._save()

    def mark_serving(self, release: str, *, warm_previous: str | None) -> None:
        """Record which release takes the traffic now (saved at once: a restarted guard adopts it)."""
        with self.lock:
            self.state.serving = release
            self.state.warm_previous = warm_previous
            self._save()

    def register_release(self, release: str, python: Path) -> None:
        with self.lock:
            self.state.pythons[release] = str(python)
            self._save()

    def status(self) -> dict[str, object]:
        stats = {}
        if self.edge is not None:
            try:
                stats = self._runtime().server_stats()
            except Exception:
                stats = {}
        slots = []
        groups = read_groups([e.pid for e in self.state.slots.values()])
        for n, entry in sorted(self.state.slots.items()):
            s = stats.get(n)
            group = groups[entry.pid]
            lease = entry.lease(self.edge_config.slot_socket(n))
            slots.append(
                {
                    "slot": n,
                    "release": entry.release,
                    "pid": entry.pid,
                    # alive: the leader runs and the slot's socket is still the one it published
                    "alive": is_alive(entry.pid) and (lease is None or lease.is_current()),
                    "workers": len(group.workers) if group.is_visible else None,
                    "rss_mb": round(group.rss_bytes / 2**20) if group.rss_bytes is not None else None,
                    "weight": self.state.weights.get(n, 0),
                    "haproxy_status": s.status if s else None,
                    "requests": s.lbtot if s else None,
                    "errors_5xx": s.hrsp_5xx if s else None,
                }
            )
        return {
            "serving": self.state.serving,
            "warm_previous": self.state.warm_previous,
            "front_door": f"http://{self.settings.host}:{self.settings.port}",
            "edge_pid": self.edge.pid if self.edge else None,
            "slots": slots,
            "edge_redirects": self.redirects.status() if self.redirects is not None else None,
        }

    # internals ---------------------------------------------------------------

    def _record_rollback(self, bad: str, target: str, actor: str) -> None:
        mark_rolled_back(self.data_dir, bad, to=target, by=actor, at=self.clock.now())
        if self.journal is not None:
            self.journal.append(
                "release.rolled_back", f"{actor} rolled back from {bad} to {target}",
                release=bad, severity="warning",
                body={"automatic": False, "by": actor, "reason": "operator rollback",
                      "reached_users": True, "step": "manual", "to": target},
            )  # fmt: skip

    def _edge_redirects(self) -> EdgeRedirects | None:
        if not self.edge_config.edge_redirects:
            return None
        return EdgeRedirects(
            self.edge_config, open_store(self.settings.database_url), self._runtime,
            data_dir=self.data_dir, limit=self.settings.edge.map_max_links,
            flush_seconds=self.settings.links.click_flush_seconds,
            on_event=lambda kind, message, severity: self.on_edge_event(kind, message, severity),
        )  # fmt: skip

    def _runtime(self) -> RuntimeClient:
        if self.edge is None:
            raise ReleaseError("HAProxy is not running; start the guard with `steadylink up`.")
        return self.edge.runtime

    def _free_slot(self) -> int:
        for n in range(self.edge_config.slots):
            # a socket that answers there is some other process's: never take it over
            if n not in self.state.slots and probe_socket(self.edge_config.slot_socket(n)) is None:
                return n
        raise Conflict("Every HAProxy slot is in use; finish or roll back the running release first.")

    def _live_slots(self) -> bool:
        return any(
            is_alive(e.pid) and probe_socket(self.edge_config.slot_socket(n)) == 200
            for n, e in self.state.slots.items()
        )

    def _prune_dead_slots(self) -> None:
        """Forget groups with nothing left; a dead leader's orphaned workers stay
        (still serving) until the supervisor replaces the group."""
        for n, entry in list(self.state.slots.items()):
            is_alive(entry.pid)  # reaps it if it is our exited child
            if is_group_gone(entry.pid):
                del self.state.slots[n]
                self.state.weights.pop(n, None)

    def _previous_good(self) -> str | None:
        """The newest promoted release older than the serving one (the first release included)."""
        records = list_records(self.data_dir)
        promoted = [r.id for r in records if r.verdict == "promoted"]
        serving = self.state.serving
        if serving in promoted:
            older = promoted[promoted.index(serving) + 1 :]
        elif serving in {r.id for r in records}:
            older = []
        else:
            older = promoted
        return older[0] if older else None

    def _save(self) -> None:
        """Write ``run/guard.json``; a disk that refuses it never stops the guard.

        On a full disk a failed save once left a started group in a slot that
        nothing used (the exception cut ``launch`` short), so every restart took
        another slot until none was left. Now the state stays right in memory,
        ``unsaved`` says so, and ``save_if_unsaved`` (each supervisor tick) writes
        it once the disk takes writes. What is lost meanwhile: a guard that dies
        before then adopts the last state that was saved.
        """
        self.state.guard_pid = os.getpid()
        path = self.run_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.state.to_json(), indent=2))
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not self.unsaved:
                print(f"guard: cannot save {path} ({exc.strerror}); the state is kept in memory "
                      "and saved once the disk takes writes", file=sys.stderr)  # fmt: skip
            self.unsaved = True
            return
        if self.unsaved:
            self.unsaved = False
            print(f"guard: {path} saved again", file=sys.stderr)

    def save_if_unsaved(self) -> None:
        with self.lock:
            if self.unsaved:
                self._save()
