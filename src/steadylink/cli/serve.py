"""``steadylink serve``: migrate the database (unless a newer release did), then hand
the process over to granian;
``steadylink compact``: the visit compactor ``serve`` starts beside it.

The granian command is built as plain data (``ServePlan``: argv and the
environment it adds) so tests compare it without starting anything; then the
process is replaced by granian (``os.execvpe``). So the PID a supervisor
started is granian's own: SIGTERM and Ctrl-C reach it directly and it stops
its workers, with no wrapper in between to forward or lose a signal. Just
before, ``serve`` starts the visit compactor (``links/compactor.py``) as a
child that follows that PID.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import typer

from steadylink.cli.output import print_done, print_note
from steadylink.cli.state import state_of
from steadylink.edge.process import is_process_running
from steadylink.errors import Conflict, InvalidInput, StoreError
from steadylink.links.compactor import Compactor
from steadylink.links.compat import prepare_schema
from steadylink.links.files import FileStore
from steadylink.links.spool import VisitSpool
from steadylink.links.sql_store import open_store
from steadylink.settings import Settings
from steadylink.streams import protect_std_streams

APP_TARGET = "steadylink.web.app:app"


@dataclass(frozen=True, slots=True)
class ServePlan:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.command("compact")(compact_command)


def serve_command(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Address to listen on [default: 127.0.0.1]."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="Port [default: 8080]."),
    uds: Path | None = typer.Option(None, "--uds", help="Listen on this unix socket instead."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="As the root option."),
    database: str | None = typer.Option(None, "--database", help="As the root option."),
) -> None:
    """Serve the shortener with granian (migrates the database first)."""
    state = state_of(ctx)
    settings = state.settings(data_dir=data_dir, database=database)
    host = host or settings.host
    port = port or settings.port
    if uds is not None:
        check_socket_path(uds)
    else:
        check_port_free(host, port)
    schema_note = migrate(settings)
    plan = build_serve_plan(
        settings,
        host=host,
        port=port,
        uds=uds,
        workers=workers,
        config=state.config,
        metrics_dir=fresh_metrics_dir() if workers > 1 else None,
    )
    where = f"unix:{uds}" if uds else f"http://{host}:{port}"
    print_note(f"{schema_note}; serving {where} with {workers} worker(s)")
    start_compactor(plan)
    exec_plan(plan)


def compact_command(
    ctx: typer.Context,
    every: float | None = typer.Option(
        None, "--every", min=0.01, help="Seconds between passes [default: links.compact_seconds]."
    ),
    follow: int | None = typer.Option(
        None, "--follow", min=1, help="Stop (after a last pass) when this process is gone."
    ),
    once: bool = typer.Option(False, "--once", help="Fold what is waiting now, then exit."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="As the root option."),
    database: str | None = typer.Option(None, "--database", help="As the root option."),
) -> None:
    """Fold the workers' visits into totals and stats (`serve` runs one; SIGTERM stops it)."""
    protect_std_streams()  # its output is a file in the data folder, which may fill
    settings = state_of(ctx).settings(data_dir=data_dir, database=database)
    store = open_store(settings.database_url)
    try:
        compactor = Compactor(
            store, VisitSpool(settings.visits_dir), every=every or settings.links.compact_seconds,
            follow_pid=follow, warn=print_note,
            files=FileStore(settings.files_dir, max_bytes=settings.links.upload_max_bytes),
        )  # fmt: skip
        if once:
            compactor.stop()
        else:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: compactor.stop())
        folded = compactor.run()
        if once and compactor.last_error:
            raise StoreError(f"{compactor.last_error} (nothing is lost: the visits wait in the spool)")
    finally:
        store.close()
    print_done(f"folded {folded} visits into totals and stats")


def start_compactor(plan: ServePlan, python: str = sys.executable) -> subprocess.Popen[bytes]:
    """The compactor for the granian this process is about to become (same PID, same settings)."""
    argv = [python, "-m", "steadylink", "compact", "--follow", str(os.getpid())]
    return subprocess.Popen(argv, env={**os.environ, **plan.env}, stdin=subprocess.DEVNULL)


def build_serve_plan(
    settings: Settings,
    *,
    host: str,
    port: int,
    uds: Path | None,
    workers: int,
    config: Path | None = None,
    metrics_dir: Path | None = None,
    python: str = sys.executable,
) -> ServePlan:
    """The granian command line and the environment the app reads its settings from."""
    bind = ["--uds", str(uds.absolute())] if uds else ["--host", host, "--port", str(port)]
    argv = [
        *granian_executable(python),
        "--interface", "rsgi",
        "--loop", "uvloop",
        "--workers", str(workers),
        *bind,
        "--no-ws",
        # HTTP/1.1 only (HAProxy and clients speak it): skipping granian's protocol
        # detection is ~10 % more requests per core (bench/redirect.py)
        "--http", "1",
        "--respawn-failed-workers",
        "--log-level", settings.log_level,
        APP_TARGET,
    ]  # fmt: skip
    env = {
        "STEADYLINK_DATA_DIR": str(settings.data_dir.absolute()),
        "STEADYLINK_RELEASE_ID": settings.release_id,
    }
    if settings.database:
        env["STEADYLINK_DATABASE"] = settings.database
    if config is not None:
        env["STEADYLINK_CONFIG"] = str(config.absolute())
    if metrics_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return ServePlan(argv, env)


def granian_executable(python: str) -> list[str]:
    beside = Path(python).with_name("granian")
    return [str(beside)] if beside.is_file() else [python, "-m", "granian"]


def check_port_free(host: str, port: int) -> None:
    """Bind once before handing over, so a busy port gets one clear sentence."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidInput(f"cannot listen on host {host!r}: {exc.strerror}", field="host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as granian binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise Conflict(f"port {port} is in use; pick another with --port") from None
            raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}", field="host") from None


def check_socket_path(uds: Path) -> None:
    """A live socket at ``uds`` is refused; a stale one (nobody listening) is removed."""
    if not uds.exists() and not uds.is_symlink():
        uds.parent.mkdir(parents=True, exist_ok=True)
        return
    if not uds.is_socket():
        raise Conflict(f"{uds} exists and is not a socket; pick another --uds path")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(uds))
        except OSError:
            uds.unlink()
            return
    raise Conflict(f"socket {uds} is in use; pick another with --uds")


def migrate(settings: Settings) -> str:
    """Migrate a schema behind this release; a newer release's schema is served as it is if it
    fits (expand/contract, ``links/compat.py``). Returns what was done, for the log."""
    store = open_store(settings.database_url)
    try:
        return prepare_schema(store.engine)
    finally:
        store.close()


def fresh_metrics_dir(*, under: Path | None = None) -> Path:
    """An empty folder for Prometheus' multi-process files, in memory, never in the data folder.

    prometheus-client keeps each worker's figures in files it maps into memory
    and grows them as new series appear; on a full disk the page it then
    touches has no room behind it and the worker dies of SIGBUS — every worker,
    and every replacement, since new series (503s) appear exactly then. So the
    files live in ``/dev/shm`` (memory, apart from any disk; the system's
    temporary folder where there is none). A folder is named after the
    ``serve`` process (granian keeps its pid), and the folders of processes
    that are gone are removed here, so restarts leave nothing behind.
    """
    base = under or _memory_dir()
    parent = base / f"steadylink-metrics-{os.getuid()}"
    parent.mkdir(mode=0o700, exist_ok=True)
    for old in parent.glob("serve-*"):
        pid = old.name.split("-")[1]
        if pid.isdigit() and not is_process_running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=parent, prefix=f"serve-{os.getpid()}-"))


def _memory_dir() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def exec_plan(plan: ServePlan) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(plan.argv[0], plan.argv, {**os.environ, **plan.env})
