"""The ``steadylink`` command: root options, the registry of command groups, the error edge.

Each command group is a module in ``steadylink/cli/`` with a
``register(app)`` function; ``COMMAND_GROUPS`` below lists them, so adding a
group is one line. Registering a command name twice fails at start-up.

Errors: a ``SteadylinkError`` raised anywhere below is caught here, once, in
``SteadylinkGroup.main`` (what ``run()`` and the test runner both call), and
printed as one red line ``error: <message>`` with the error's exit code.
Anything else is a bug: a short line, and the trace only with
``STEADYLINK_DEBUG=1``. Typer's own usage errors keep exit code 2.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

import typer
from typer import _click  # the click typer runs on (its own copy)
from typer.core import TyperGroup

from steadylink.cli import backup, db, edge, guard, incidents, keys, links, serve, transfer, watch
from steadylink.cli.output import print_error, print_note
from steadylink.cli.state import state_of
from steadylink.errors import SteadylinkError

COMMAND_GROUPS: tuple[ModuleType, ...] = (
    serve, links, keys, db, transfer, backup, guard, watch, incidents, edge,
)  # fmt: skip


# Root options that take a value; they may also come after the command
# (``steadylink keys create --data-dir D``), where they are moved to the front.
ROOT_OPTIONS = ("--data-dir", "--database", "--config")


def hoist_root_options(args: list[str]) -> list[str]:
    """``args`` with every root option (and its value) moved before the command.

    Stops at ``--``: what follows is an argument, even if it looks like an option.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        if name in ROOT_OPTIONS and "=" in arg:
            front.append(arg)
        elif arg in ROOT_OPTIONS and i + 1 < len(args):
            front += args[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class SteadylinkGroup(TyperGroup):
    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_root_options(args))

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except SteadylinkError as exc:
            print_error(exc.message)
            raise SystemExit(exc.exit_code) from None
        except Exception as exc:
            if os.environ.get("STEADYLINK_DEBUG") == "1":
                raise
            print_error(f"unexpected {type(exc).__name__}: {exc}")
            print_note("This is a bug in steadylink; run with STEADYLINK_DEBUG=1 for the trace.")
            raise SystemExit(1) from None


app = typer.Typer(
    cls=SteadylinkGroup,
    name="steadylink",
    help="A URL shortener that keeps its promise.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"steadylink {version('steadylink')}")
        except PackageNotFoundError:
            typer.echo("steadylink (not installed)")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        envvar="STEADYLINK_DATA_DIR",
        help="Folder for the SQLite database, uploads and backups [default: steadylink-data].",
    ),
    database: str | None = typer.Option(
        None,
        "--database",
        envvar="STEADYLINK_DATABASE",
        help="Database URL (postgresql://...); default: SQLite in the data folder.",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        envvar="STEADYLINK_CONFIG",
        help="steadylink.toml to read [default: ./steadylink.toml if present].",
    ),
    show_version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """A URL shortener that keeps its promise."""
    state = state_of(ctx)
    state.data_dir = data_dir
    state.database = database
    state.config = config


def register_all(target: typer.Typer, groups: tuple[ModuleType, ...]) -> None:
    """Let every group add its commands; a name registered twice is a bug, said at once."""
    for group in groups:
        group.register(target)
        names = command_names(target)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise RuntimeError(f"{group.__name__} registers {duplicates} a second time.")


def command_names(target: typer.Typer) -> list[str]:
    """The top-level command and group names, as typed on the command line."""
    names = [
        c.name or (c.callback.__name__.replace("_", "-") if c.callback else "")
        for c in target.registered_commands
    ]
    return names + [g.name or "" for g in target.registered_groups]


register_all(app, COMMAND_GROUPS)


def run() -> None:
    """The console script ``steadylink``."""
    app()
