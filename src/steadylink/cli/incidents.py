"""Incident commands: ``incidents``, ``incident``, ``report``, ``errors``.

``incidents`` and ``incident`` talk to the running guard's ops API (it owns
the journal and tells status-page subscribers); while no guard runs they can
still read ``ops.db``. ``report`` and ``errors`` read the data folder
directly: they work after an outage took everything else down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from steadylink.cli.output import out, print_done, print_json, print_note, print_table
from steadylink.cli.state import state_of
from steadylink.errors import InvalidInput, ReleaseError, SteadylinkError
from steadylink.ops.client import GuardClient
from steadylink.settings import Settings

ACTIONS = ("note", "status", "resolve", "correct")


def register(app: typer.Typer) -> None:
    app.command("incidents")(incidents)
    app.command("incident")(incident)
    app.command("report")(report)
    app.command("errors")(errors)


def incidents(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print incidents as JSON.")
) -> None:
    """Incidents, newest first."""
    rows: list[dict[str, Any]] = _read(state_of(ctx).settings(), "/ops/v1/incidents", None)
    if as_json:
        print_json(rows)
        return
    print_table(
        ("id", "sev", "status", "opened", "title"),
        [(r["id"], r["severity"], r["status"], r["opened_at"], escape(r["title"])) for r in rows],
        caption="" if rows else "No incidents yet.",
    )


def incident(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="Incident id, or `open` to open one."),
    action: str | None = typer.Argument(
        None, help="note TEXT | status STATUS | resolve | correct MOMENT TIME (or TITLE after open)."
    ),
    value: str | None = typer.Argument(None, help="The note's text, the new status, or a moment."),
    at: str | None = typer.Argument(None, help="With `correct`: the moment's time, ISO 8601 (no zone: UTC)."),
    reason: str = typer.Option("", "--reason", help="With `correct`: why (kept in the timeline)."),
    public: str | None = typer.Option(None, "--public", help="Text for the status page and its subscribers."),
    severity: str = typer.Option("SEV2", "--severity", help="SEV1, SEV2 or SEV3 (with `open`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the incident as JSON."),
) -> None:
    """Show an incident; or `ID note TEXT`, `ID status STATUS [--public TEXT]`, `ID resolve`,
    `ID correct MOMENT TIME --reason TEXT`, `open TITLE`."""
    settings = state_of(ctx).settings()
    if target == "open":
        if not action:
            raise InvalidInput(
                "Say what happened: steadylink incident open 'Redirects answer 500'.", field="title"
            )
        body = GuardClient.find(settings).post("/ops/v1/incidents", {"title": action, "severity": severity})
        _show(body, as_json=as_json)
        return
    incident_id = _incident_id(target)
    path = f"/ops/v1/incidents/{incident_id}"
    if action is None:
        _show(_read(settings, path, incident_id), as_json=as_json)
        return
    if action not in ACTIONS:
        raise InvalidInput(f"Unknown action {action!r}; use one of {', '.join(ACTIONS)}.", field="action")
    if action in ("note", "status", "correct") and not value:
        raise InvalidInput(f"`incident {incident_id} {action}` needs a value.", field=action)
    if action == "correct" and not at:
        raise InvalidInput(
            f"`incident {incident_id} correct {value}` needs the moment's time, e.g. 2026-01-01T12:00:00Z.",
            field="at",
        )
    client = GuardClient.find(settings)
    if action == "note":
        body = client.post(f"{path}/notes", {"text": value, "public": public})
    elif action == "status":
        body = client.post(f"{path}/status", {"status": value, "public": public})
    elif action == "correct":
        body = client.post(f"{path}/moments", {"moment": value, "at": at, "reason": reason})
    else:
        body = client.post(f"{path}/resolve", {"public": public})
    if as_json:
        print_json(body)
    else:
        print_done(f"incident {incident_id}: {body['status']}")


def report(
    ctx: typer.Context,
    incident_id: str = typer.Argument(..., help="Incident id."),
    fmt: str = typer.Option("md", "--format", help="md or html."),
    output: Path | None = typer.Option(None, "-o", "--output", help="File to write [default: stdout]."),
) -> None:
    """The post-incident report, written from the facts the guard kept."""
    from steadylink.incidents.report import write_report

    state = state_of(ctx)
    written = write_report(
        state.settings(), _incident_id(incident_id), fmt=fmt, output=output, now=state.clock.now()
    )
    if output is not None:
        print_note(f"wrote {', '.join(str(p) for p in written)}")


def errors(
    ctx: typer.Context,
    since: str = typer.Option("24h", "--since", help="How far back: 30m, 1h, 7d."),
    release: str | None = typer.Option(None, "--release", help="Only this release's errors."),
    file: Path | None = typer.Option(
        None, "--file", help="Group the Python tracebacks of any plain-text log."
    ),
    limit: int = typer.Option(20, "--limit", help="Groups to show."),
    as_json: bool = typer.Option(False, "--json", help="Print groups as JSON."),
) -> None:
    """Errors grouped by fingerprint: the workers' logs, or a foreign log with --file."""
    from steadylink.incidents.error_hunt import hunt_file, hunt_workers, parse_since

    settings = state_of(ctx).settings()
    if file is not None:
        groups = hunt_file(file)
    else:
        groups = hunt_workers(settings.data_dir.resolve(), since=parse_since(since), release=release)
    shown = groups[: max(1, limit)]
    if as_json:
        print_json([g.to_json() for g in shown])
        return
    if not groups:
        out().print("No errors found.")
        return
    for g in shown:
        out().print(f"[bold]{g.count} x[/] {escape(g.title)}", highlight=False)
        out().print(
            f"   {g.fingerprint[:12]}  first {g.first_seen or '-'}  last {g.last_seen or '-'}",
            highlight=False,
        )
        if g.releases:
            out().print(f"   releases: {', '.join(sorted(g.releases))}", highlight=False)
        for line in g.source_lines()[:1]:
            out().print(f"   {line}", highlight=False)
    if len(groups) > len(shown):
        print_note(f"{len(groups) - len(shown)} more groups; --limit shows more.")


def _incident_id(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise InvalidInput(
            f"{text!r} is not an incident id (a number, see `steadylink incidents`).", field="id"
        )
    return int(text)


def _read(settings: Settings, path: str, incident_id: int | None) -> Any:
    """From the guard if one runs, else straight from ``ops.db`` (read-only)."""
    try:
        return GuardClient.find(settings).get(path)
    except ReleaseError:
        pass  # no guard runs, or it does not answer: read the file it keeps
    from steadylink.incidents.service import Incidents
    from steadylink.incidents.store import IncidentStore
    from steadylink.watch.opsdb import ops_db_path

    if not ops_db_path(settings.data_dir).exists():
        if incident_id is None:
            return []
        raise SteadylinkError(f"No incident {incident_id}: this data folder has no incidents yet.")
    store = IncidentStore.for_data_dir(settings.data_dir.resolve(), read_only=True)
    try:
        if incident_id is None:
            return [i.to_json() for i in store.list_incidents()]
        return Incidents(store).detail(incident_id)
    finally:
        store.close()


def _show(body: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(body)
        return
    out().print(f"[bold]#{body['id']} {body['severity']} {body['status']}[/]: ", end="")
    out().print(body["title"], markup=False, highlight=False)
    out().print(
        f"releases: {', '.join(body['releases']) or '-'}   alerts: {', '.join(body['alerts']) or '-'}"
    )
    for name, at in body["moments"].items():
        out().print(f"  {name.replace('_', ' '):<17} {at or '-'}")
    out().print("timeline:")
    for entry in body["timeline"]:
        text = entry["text"] if len(entry["text"]) < 300 else entry["text"][:300] + "…"
        out().print(f"  {entry['at']}  {entry['source']:<10} {text}", markup=False, highlight=False)
