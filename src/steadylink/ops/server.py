"""``steadylink up``: the guard in the foreground.

Starts (or adopts) HAProxy and the serving release (building the first
release when nothing was released yet, ``release/first.py``), then serves the ops API
on the ops port until Ctrl-C / SIGTERM, and then stops everything it runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from steadylink.clock import SystemClock
from steadylink.datadir import secure_data_dir
from steadylink.edge import check_certificates, ensure_port_free
from steadylink.incidents.guard_hook import RunningIncidents, start_incidents
from steadylink.links.compat import prepare_schema
from steadylink.links.service import IssuedKey, authenticate, create_key
from steadylink.links.sql_store import open_store
from steadylink.ops.api import create_ops_app
from steadylink.release.first import ensure_serving_release
from steadylink.release.guard import Guard
from steadylink.release.interrupted import end_interrupted_deploys
from steadylink.release.supervision import SupervisionLoop
from steadylink.settings import Settings
from steadylink.types import Role
from steadylink.watch.journal import Journal
from steadylink.watch.watcher import Watcher
from steadylink.watch.wiring import check_channels, watcher_for_guard

OPERATOR_KEY_FILE = "operator.key"
OPERATOR_KEY_NAME = "local operator"


def operator_key_path(data_dir: Path) -> Path:
    return data_dir.resolve() / "run" / OPERATOR_KEY_FILE


def ensure_operator_key(settings: Settings) -> IssuedKey:
    """The local operator's admin key, made once and kept in the data dir (mode 0600)."""
    path = operator_key_path(settings.data_dir)
    store = open_store(settings.database_url)
    try:
        prepare_schema(store.engine)  # a newer release may have migrated it: then it must fit
        if path.exists():
            secret = path.read_text().strip()
            if (known := authenticate(store=store, secret=secret)) is not None:
                return IssuedKey(known, secret)
        clock = SystemClock()
        # key names are unique: a lost key file's key is revoked, then made anew
        for lost in store.list_keys():
            if lost.name == OPERATOR_KEY_NAME and not lost.is_revoked:
                store.revoke_key(lost.id, clock.now())
        issued = create_key(store=store, clock=clock, name=OPERATOR_KEY_NAME, role=Role.ADMIN)
    finally:
        store.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(issued.secret + "\n")
    return issued


def ops_server_config(settings: Settings, app: ASGIApp) -> uvicorn.Config:
    """The ops server on its own address, loopback by default: it speaks plain HTTP, so
    a public ``host`` for the front door must not carry it along (README, Trust boundaries)."""
    return uvicorn.Config(
        app, host=settings.ops_host, port=settings.ops_port, log_level="warning", access_log=False
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class _GuardServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its shutdown, which would kill the guard
    before it stops what it started; the guard takes the signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def ask_to_exit(self, signum: int, frame: object) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def run_guard(
    settings: Settings,
    *,
    source_dir: Path | None,
    progress: Callable[[str], None] = print,
    journal: Journal | None = None,
) -> None:
    secure_data_dir(settings.data_dir)  # records, keys, logs: the owner's only, whoever started us
    ensure_port_free(settings.ops_host, settings.ops_port)
    check_channels(settings)  # a malformed channel URL is refused before anything starts
    # Until the ops server runs, a signal unwinds through the finally below; a restart in place
    # (SIGUSR2) is ignored until the guard serves (and across its own execution, see below).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    operator = ensure_operator_key(settings)
    # One journal per guard: the one `up` made (and closes), else one of our own.
    owns_journal = journal is None
    if journal is None:
        retention = timedelta(days=settings.watch.journal_retention_days)
        journal = Journal.for_data_dir(settings.data_dir, retention=retention)
    guard = Guard(settings, journal=journal)
    check_certificates(guard.edge_config.tls_certs)  # a bad one is refused before anything starts
    # Before anything starts: a first build that fails leaves nothing running.
    ensure_serving_release(guard, source_dir=source_dir, progress=progress)
    # what the ops port asks the links database (keys) waits as briefly as a worker does
    store = open_store(settings.database_url, answer_seconds=settings.store.timeout_seconds)
    server: uvicorn.Server | None = None
    supervision: SupervisionLoop | None = None
    watch: Watcher | None = None
    running_incidents: RunningIncidents | None = None

    def edge_event(kind: str, message: str, severity: str) -> None:
        journal.append(kind, message, severity=severity)  # `up` prints every journal event

    guard.on_edge_event = edge_event  # map rebuilds, failed map syncs, a restarted visit reader
    in_place: list[bool] = []  # SIGUSR2: execute the guard again, leaving the stack serving
    try:
        guard.start(progress=progress)
        end_interrupted_deploys(guard, progress)  # a deploy the last guard died in
        guard.record_ops_port(settings.ops_port)
        supervision = SupervisionLoop(guard, journal=journal, progress=progress).start()
        watch = watcher_for_guard(settings, guard, store, journal)
        watch.start()
        running_incidents = start_incidents(guard, journal)
        app = create_ops_app(
            guard,
            store,
            source_dir=source_dir,
            journal=journal,
            watch=watch,
            incidents=running_incidents.incidents,
            operator=operator,
        )
        server = _GuardServer(ops_server_config(settings, app))
        def stop_all(signum: int, frame: object) -> None:
            in_place.clear()  # a stop asked for after a restart in place wins
            assert server is not None
            server.ask_to_exit(signum, frame)

        def restart_in_place(signum: int, frame: object) -> None:
            assert server is not None
            if not server.should_exit:  # a stop already under way wins
                in_place.append(True)
                server.ask_to_exit(signum, frame)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop_all)
        signal.signal(signal.SIGUSR2, restart_in_place)
        progress(
            f"steadylink is up: http://{settings.host}:{settings.port}/ "
            f"(ops API http://{settings.ops_host}:{settings.ops_port}/ops/v1/status)"
        )
        progress(f"serving {guard.state.serving}; Ctrl-C stops everything")
        server.run()
    finally:
        is_restart = bool(in_place)  # decided once: a signal from here on changes nothing
        progress("restarting the guard in place (SIGUSR2)" if is_restart else "stopping")
        if supervision is not None:
            supervision.stop()  # first: it must not restart what is being stopped
        if watch is not None:
            watch.stop()
        if is_restart:
            journal.append(
                "guard.restarting",
                "the guard executes itself again (SIGUSR2); HAProxy and the workers serve on",
                body={"pid": os.getpid()},
            )  # fmt: skip
            guard.let_go(progress=progress)
        else:
            guard.stop(progress=progress)
        if running_incidents is not None:
            running_incidents.stop()
        store.close()
        if owns_journal or is_restart:
            journal.close()
    if is_restart:
        restart_guard_process()


def restart_guard_process() -> None:
    """Execute the guard again in this process: the same PID (HAProxy, the workers and the
    visit reader stay its children) and arguments, and the code installed now — how the
    guard itself is upgraded without stopping what serves."""
    sys.stdout.flush()
    sys.stderr.flush()
    # a handled signal is reset to its default (for SIGUSR2: terminate) by exec; an ignored one
    # stays ignored until the next guard can handle it
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    os.execv(sys.executable, [sys.executable, "-m", "steadylink", *sys.argv[1:]])
