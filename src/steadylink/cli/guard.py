"""Guard commands: ``up``, ``deploy``, ``rollback``, ``releases``, ``status``, ``approve``.

``up`` runs the guard in the foreground; the others find it through the data
folder (``run/guard.json``) and talk to its ops API with the local operator's
key (or ``STEADYLINK_API_KEY``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from steadylink.cli.output import err, out, print_fitted_table, print_json, print_note
from steadylink.cli.state import state_of
from steadylink.cli.watch import print_watch_status
from steadylink.errors import InvalidInput
from steadylink.ops.client import GuardClient
from steadylink.release.deploy import EXIT_REFUSED, failure_summary
from steadylink.release.stage import CHANGEABLE_CHECKS
from steadylink.settings import Settings
from steadylink.streams import protect_std_streams
from steadylink.watch.journal import Event, Journal


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("deploy")(deploy)
    app.command("rollback")(rollback)
    app.command("releases")(releases)
    app.command("status")(status)
    app.command("approve")(approve)


def up(
    ctx: typer.Context,
    port: int | None = typer.Option(None, "--port", help="Front door (HAProxy) port [default: 8080]."),
    ops_port: int | None = typer.Option(None, "--ops-port", help="Guard's ops API port [default: 8081]."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Data folder (same as the root option)."),
    source: Path | None = typer.Option(None, "--source", help="Git checkout that `deploy REF` builds from."),
    tls_port: int | None = typer.Option(None, "--tls-port", help="HTTPS port [default: 8443]."),
) -> None:
    """Run the whole stack in the foreground: HAProxy, the serving release, the guard."""
    from steadylink.ops.server import run_guard

    protect_std_streams()  # a terminal, or a file on a disk that may fill: never a reason to stop
    state = state_of(ctx)
    settings = state.settings(port=port, ops_port=ops_port, data_dir=data_dir)
    if tls_port is not None:
        settings = settings.with_overrides(edge=replace(settings.edge, tls_port=tls_port))
    if settings.base_url == Settings().base_url:
        # short links should point at the front door this command opens (HTTPS when it has a certificate)
        tls = settings.edge.tls_cert
        settings = settings.with_overrides(
            base_url=f"https://{settings.host}:{settings.edge.tls_port}"
            if tls
            else f"http://{settings.host}:{settings.port}"
        )
    if source is not None and not (source / ".git").exists():
        raise InvalidInput(f"--source {source} is not a git checkout.", field="source")
    journal = Journal.for_data_dir(
        settings.data_dir.resolve(), retention=timedelta(days=settings.watch.journal_retention_days)
    )
    journal.subscribe(print_event)  # deploys, rejections, rollbacks, restarts: said where `up` runs
    try:
        run_guard(
            settings, source_dir=source.resolve() if source else None, progress=print_note, journal=journal
        )
    finally:
        journal.close()


def print_event(event: Event) -> None:
    """One journal event as a line on `up`'s terminal."""
    at = event.at.astimezone().strftime("%H:%M:%S")
    about = f" {event.release}" if event.release else ""
    style = {"warning": "yellow", "error": "red", "critical": "bold red"}.get(event.severity, "")
    err().print(Text(f"{at} {event.kind}{about}: {event.message}", style=style), soft_wrap=True)


def deploy(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Git ref to release: branch, tag or commit."),
    source: Path | None = typer.Option(None, "--source", help="Git checkout to build from."),
    no_canary: bool = typer.Option(False, "--no-canary", help="Emergency path (admin): skip the canary."),
    expect_change: list[str] = typer.Option(
        [],
        "--expect-change",
        help="A stage comparison this release changes on purpose (differential: how existing links "
        "answer; writes: how new links are stored; data: what its migrations do to stored links); "
        "its differences are recorded, not rejected.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the release record as JSON."),
) -> None:
    """Build, gate, stage and canary REF; exit 0 promoted, 3 rejected, 4 rolled back, 2 refused."""
    unknown = [name for name in expect_change if name not in CHANGEABLE_CHECKS]
    if unknown:
        err().print(
            f"[bold red]error:[/] --expect-change takes {', '.join(CHANGEABLE_CHECKS)}, not {unknown[0]!r}."
        )
        raise typer.Exit(EXIT_REFUSED)
    client = GuardClient.find(state_of(ctx).settings())
    body: dict[str, object] = {"ref": ref, "no_canary": no_canary, "expect_change": expect_change}
    if source is not None:
        body["source"] = str(source.resolve())
    final = client.deploy(body, on_progress=lambda line: err().print(f"  {line}", highlight=False))
    record = final.get("record")
    code = int(final.get("exit_code") or 0)
    if as_json:
        print_json(record if record is not None else {"error": final.get("error")})
    if "error" in final:
        err().print(f"[bold red]error:[/] {final['error']}")
        raise typer.Exit(EXIT_REFUSED if code in (0, 2) else code)
    assert isinstance(record, dict)
    if not as_json:
        _print_outcome(record)
    raise typer.Exit(code)


def rollback(
    ctx: typer.Context,
    release: str | None = typer.Argument(None, help="Release id [default: the previous good one]."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Send all traffic back to the previous (or named) good release."""
    client = GuardClient.find(state_of(ctx).settings())
    before = client.get("/ops/v1/status").get("serving")
    result = client.post("/ops/v1/rollback", {"release": release})
    result["from"] = before
    if as_json:
        print_json(result)
    else:
        out().print(f"rolled back from {before} to {result['serving']} in {result['seconds']:.2f}s")


def releases(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print records as JSON.")
) -> None:
    """Release history, newest first."""
    records: list[dict[str, Any]] = GuardClient.find(state_of(ctx).settings()).get("/ops/v1/releases")
    if as_json:
        print_json(records)
        return
    print_releases(records)


VERDICT_SHOWN = {"rolled_back": "rolled back"}


def print_releases(records: list[dict[str, Any]], console: Console | None = None) -> None:
    """The history table: ids, verdicts, steps and refs are never cut (they are copied into
    commands); the subject takes what is left of a terminal's width, and all of it in a pipe."""
    rows = [
        (
            r["id"],
            VERDICT_SHOWN.get(r["verdict"], r["verdict"]),
            r.get("caught_by") or "-",
            r["ref"],
            r["subject"],
        )
        for r in records
    ]
    print_fitted_table(("release", "verdict", "caught by", "ref", "subject"), rows, console=console)


def status(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print status as JSON.")
) -> None:
    """What is serving now, on which slots, with which weights."""
    body: dict[str, Any] = GuardClient.find(state_of(ctx).settings()).get("/ops/v1/status")
    if as_json:
        print_json(body)
        return
    out().print(f"front door {body['front_door']}, serving [bold]{body['serving']}[/]")
    edge = body.get("edge_redirects")
    if edge:
        map_, visits = edge["map"], edge["visits"]
        out().print(
            f"  edge map: {map_['links']} links (max {map_['limit']}), last sync {map_['last_sync']}"
            + (f", [bold red]{map_['error']}[/]" if map_["error"] else "")
        )
        out().print(f"  edge visits: {visits['received'] or 0} counted, {visits['lost'] or 0} lost")
    for slot in body["slots"]:
        out().print(
            f"  slot {slot['slot']}: {slot['release']} weight {slot['weight']} "
            f"({slot['haproxy_status']}, {slot['requests']} requests, {slot['errors_5xx']} 5xx)"
        )
    print_watch_status(body.get("watch"))  # SLO, error budget, burn rate, what fires (cli/watch.py)


def approve(ctx: typer.Context, release: str = typer.Argument(..., help="Release id to approve.")) -> None:
    """Approve a release (a second person, where release.require_approval is on)."""
    body = GuardClient.find(state_of(ctx).settings()).post(f"/ops/v1/releases/{release}/approve")
    out().print(f"approved {body['release']} as {body['approver']}")


def _print_outcome(record: dict[str, Any]) -> None:
    verdict = record["verdict"]
    steps = ", ".join(f"{s['name']} {s['verdict']}" for s in record["steps"])
    out().print(
        f"{record['id']}: {verdict}"
        + (f" (caught by {record['caught_by']})" if record.get("caught_by") else "")
    )
    print_note(steps)
    if verdict == "promoted":
        print_note("Next: watch `steadylink status`; `steadylink rollback` undoes it.")
    elif verdict == "rolled_back":
        print_note(
            "Users were protected: traffic is back on the previous release. See `steadylink releases`."
        )
    else:
        failed = next((step for step in record["steps"] if step["verdict"] == "failed"), None)
        if failed is not None:
            print_note(f"{failed['name']} failed:")
            for line in failure_summary(str(failed.get("output_tail", ""))):
                print_note(f"  {line}")
        print_note("Nothing reached users. Fix the commit and deploy again.")
