"""``steadylink keys``: API keys for the JSON API (only their hashes are stored)."""

from __future__ import annotations

from typing import Any

import typer

from steadylink.cli.output import print_done, print_fields, print_json, print_table, print_warning
from steadylink.cli.state import ready_store, state_of
from steadylink.links import service
from steadylink.links.model import ApiKey
from steadylink.links.transfer import iso
from steadylink.types import Role

group = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)

ROLES = ", ".join(role.label for role in Role)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="keys")


@group.command("create")
def create(
    ctx: typer.Context,
    role: str = typer.Option(..., "--role", help=f"One of: {ROLES}."),
    name: str = typer.Option(..., "--name", help="Who or what uses the key."),
    as_json: bool = typer.Option(False, "--json", help="Print the key as JSON."),
) -> None:
    """Create an API key; its secret is printed once."""
    state = state_of(ctx)
    with ready_store(state.settings()) as store:
        issued = service.create_key(store=store, clock=state.clock, name=name, role=Role.parse(role))
    if as_json:
        print_json({**key_record(issued.key), "secret": issued.secret})
    else:
        print_fields(key_record(issued.key))
        print_done(issued.secret)
    print_warning("Store the secret now: it is not kept and cannot be shown again.")


@group.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON records instead of a table."),
) -> None:
    """List API keys (never their secrets)."""
    with ready_store(state_of(ctx).settings()) as store:
        records = [key_record(key) for key in store.list_keys()]
    if as_json:
        print_json(records)
        return
    print_table(
        ("id", "name", "role", "prefix", "created", "revoked"),
        ([r["id"], r["name"], r["role"], r["prefix"], r["created_at"], r["revoked_at"]] for r in records),
    )


@group.command("revoke")
def revoke(ctx: typer.Context, key_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Revoke an API key at once."""
    state = state_of(ctx)
    with ready_store(state.settings()) as store:
        service.revoke_key(store=store, clock=state.clock, key_id=key_id)
    print_done(f"revoked {key_id}")


def key_record(key: ApiKey) -> dict[str, Any]:
    """A key as the API shows it (``KeyOut``)."""
    return {
        "id": key.id,
        "name": key.name,
        "role": _role_label(key.role),
        "prefix": key.prefix,
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at),
        "is_revoked": key.is_revoked,
    }


def _role_label(role: int) -> str:
    try:
        return Role(role).label
    except ValueError:
        return str(role)
