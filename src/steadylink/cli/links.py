"""``steadylink links``: create, list, show, delete, disable and enable links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

from steadylink.cli.output import (
    print_done,
    print_fields,
    print_json,
    print_note,
    print_table,
)
from steadylink.cli.state import ready_store, state_of
from steadylink.clock import utc
from steadylink.errors import InvalidInput
from steadylink.links import service
from steadylink.links.model import LinkChanges, NewLink
from steadylink.links.transfer import link_record

group = typer.Typer(help="Create, list, show and delete links.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON records instead of a table.")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="links")


@group.command("create")
def create(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="The address the short link leads to."),
    code: str | None = typer.Option(None, "--code", help="A custom code; generated if left out."),
    expires_at: str | None = typer.Option(
        None, "--expires-at", help="ISO 8601 time after which the link is gone."
    ),
    max_visits: int | None = typer.Option(None, "--max-visits", help="Visits before it is gone."),
    password: str | None = typer.Option(None, "--password", help="Ask visitors for a password."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a short link."""
    state = state_of(ctx)
    settings = state.settings()
    new = NewLink(
        url=url,
        code=code,
        expires_at=_parse_time(expires_at, "expires_at"),
        max_visits=max_visits,
        password=password,
    )
    with ready_store(settings) as store:
        link = service.create_link(store=store, settings=settings, clock=state.clock, rng=state.rng, new=new)
    record = link_record(link, base_url=settings.base_url)
    if as_json:
        print_json(record)
    else:
        print_done(record["short_url"])
        print_fields(_brief(record))


@group.command("list")
def list_links(
    ctx: typer.Context,
    query: str | None = typer.Option(None, "--query", "-q", help="Text in the code or URL."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="How many to show."),
    offset: int = typer.Option(0, "--offset", min=0, help="How many to skip."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List links, newest first."""
    settings = state_of(ctx).settings()
    with ready_store(settings) as store:
        page = store.list_links(text=query, limit=limit, offset=offset)
    records = [link_record(link, base_url=settings.base_url) for link in page.links]
    if as_json:
        print_json({"items": records, "total": page.total, "limit": limit, "offset": offset})
        return
    first = offset + 1 if records else 0
    print_table(
        ("code", "target", "visits", "created", "expires", "state"),
        (
            (
                r["code"],
                r["url"] or f"file: {r['file']['name']}",
                _visits(r),
                _minute(r["created_at"]),
                _minute(r["expires_at"]),
                _state(r),
            )
            for r in records
        ),
        caption=f"{first}-{offset + len(records)} of {page.total}",
    )


@group.command("show")
def show(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="The link's code."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one link with its visit statistics."""
    settings = state_of(ctx).settings()
    with ready_store(settings) as store:
        link = service.get_link(store=store, code=code)
        stats = store.link_stats(code)
    record = link_record(link, base_url=settings.base_url)
    record["stats"] = {
        "total": stats.total,
        "per_day": stats.per_day,
        "referrers": stats.referrers,
        "agents": stats.agents,
        "bots": stats.bots,
        "humans": stats.humans,
    }
    if as_json:
        print_json(record)
        return
    print_fields({k: v for k, v in record.items() if k != "stats"}, title=link.code)
    shown_stats = dict(record["stats"])
    shown_stats["referrers"] = {host or "(direct or hidden)": n for host, n in stats.referrers.items()}
    print_fields(shown_stats, title="visits")


@group.command("delete")
def delete(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="The link's code."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a link and its statistics."""
    settings = state_of(ctx).settings()
    with ready_store(settings) as store:
        service.get_link(store=store, code=code)
        if not yes:
            typer.confirm(f"Delete {code} and its statistics?", abort=True)
        service.delete_link(store=store, code=code, files=state_of(ctx).files())
    print_done(f"deleted {code}")


@group.command("disable")
def disable(ctx: typer.Context, code: str = typer.Argument(..., help="The link's code.")) -> None:
    """Make a link answer 404 until it is enabled again."""
    _set_disabled(ctx, code, is_disabled=True)
    print_done(f"disabled {code}")


@group.command("enable")
def enable(ctx: typer.Context, code: str = typer.Argument(..., help="The link's code.")) -> None:
    """Let a disabled link redirect again."""
    _set_disabled(ctx, code, is_disabled=False)
    print_done(f"enabled {code}")


def _set_disabled(ctx: typer.Context, code: str, *, is_disabled: bool) -> None:
    state = state_of(ctx)
    settings = state.settings()
    with ready_store(settings) as store:
        service.change_link(
            store=store,
            settings=settings,
            clock=state.clock,
            code=code,
            changes=LinkChanges(is_disabled=is_disabled),
        )
    print_note("running workers drop their cached copy within links.invalidation_poll_seconds")


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return utc(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidInput(
            f"--{name.replace('_', '-')} must be an ISO 8601 time like 2030-01-31T12:00:00Z, not {value!r}.",
            field=name,
        ) from None


def _minute(value: str | None) -> str | None:
    """``2026-01-31 12:00`` (UTC): enough for a table; ``--json`` has the exact time."""
    return value[:16].replace("T", " ") if value else None


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("code", "url", "expires_at", "max_visits", "has_password")
    return {k: record[k] for k in keep if record[k] not in (None, False)}


def _visits(record: dict[str, Any]) -> str:
    limit = record["max_visits"]
    return f"{record['visits']}/{limit}" if limit else str(record["visits"])


def _state(record: dict[str, Any]) -> str:
    flags = [
        name for name, on in (("disabled", record["is_disabled"]), ("password", record["has_password"])) if on
    ]
    return ", ".join(flags) or "active"
