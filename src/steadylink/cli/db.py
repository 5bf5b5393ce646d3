"""``steadylink db``: schema migrations of the links database."""

from __future__ import annotations

import typer

from steadylink.cli.output import print_done, print_fields, print_json
from steadylink.cli.state import state_of
from steadylink.links.migrate import current_revision, head_revision, upgrade_to_head
from steadylink.links.sql_store import open_store

group = typer.Typer(help="Schema migrations of the links database.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="db")


@group.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration (in one transaction)."""
    settings = state_of(ctx).settings()
    store = open_store(settings.database_url)
    try:
        before = current_revision(store.engine)
        after = upgrade_to_head(store.engine)
    finally:
        store.close()
    if before == after:
        print_done(f"already at head ({after})")
    else:
        print_done(f"upgraded {before or 'empty database'} -> {after} (head)")


@group.command("current")
def current(
    ctx: typer.Context,
    check: bool = typer.Option(False, "--check", help="Exit 1 unless the schema is at head."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the schema revision and whether it is the newest this steadylink knows."""
    settings = state_of(ctx).settings()
    store = open_store(settings.database_url)
    try:
        revision = current_revision(store.engine)
    finally:
        store.close()
    head = head_revision()
    record = {
        "database": _redacted(settings.database_url),
        "revision": revision,
        "head": head,
        "is_at_head": revision == head,
    }
    if as_json:
        print_json(record)
    else:
        print_fields(record)
    if check and revision != head:
        raise typer.Exit(1)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
