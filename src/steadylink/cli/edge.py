"""Edge commands: ``edge reload`` (a renewed certificate) and ``edge read-visits`` (run by the guard)."""

from __future__ import annotations

import signal

import typer

from steadylink.cli.output import out
from steadylink.cli.state import state_of
from steadylink.edge.visitreader import STATE_FILE, VisitReader
from steadylink.links.spool import VisitSpool
from steadylink.ops.client import GuardClient
from steadylink.release.guard import edge_config_of, run_dir_of
from steadylink.streams import protect_std_streams

group = typer.Typer(help="The front door: reload HAProxy, read its visits.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="edge")


@group.command("reload")
def reload(ctx: typer.Context) -> None:
    """Reload HAProxy without dropping a request (a renewed certificate, a changed setting)."""
    body = GuardClient.find(state_of(ctx).settings()).post("/ops/v1/edge/reload")
    out().print(f"HAProxy reloaded in {body['seconds']:.2f}s (pid {body['edge_pid']})")


@group.command("read-visits")
def read_visits(
    ctx: typer.Context,
    flush_seconds: float | None = typer.Option(
        None, "--flush-seconds", min=0.01,
        help="Seconds between spool files [default: links.click_flush_seconds]",
    ),
) -> None:
    """Count the visits HAProxy answered itself into the visit spool (the guard runs it)."""
    protect_std_streams()  # its stderr is a file in the data folder, which may fill
    settings = state_of(ctx).settings()
    config = edge_config_of(settings, run_dir_of(settings.data_dir.resolve()))
    reader = VisitReader(
        config.visit_socket, VisitSpool(settings.visits_dir.resolve()), config.run_dir / STATE_FILE,
        flush_seconds=flush_seconds or settings.links.click_flush_seconds,
    )  # fmt: skip
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: reader.stop())
    reader.run()
