"""Watch commands: ``events``, ``alerts``, ``ack``, ``silence``; and the watch block of ``status``.

``events`` and ``alerts`` ask the running guard first — what it holds is
current even while ``ops.db`` refuses writes (a full disk) — and read
``<data dir>/ops.db`` read-only when no guard answers within a few seconds,
so they work when the guard is down (when it matters most); ``ack`` and
``silence`` ask the running guard (they need the ``deployer`` role).
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import typer

from steadylink.cli.output import out, print_json, print_note, print_table
from steadylink.cli.state import state_of
from steadylink.errors import SteadylinkError
from steadylink.ops.client import GuardClient
from steadylink.settings import Settings
from steadylink.watch.alert_store import alert_from_json, list_alerts
from steadylink.watch.durations import parse_since, parse_span
from steadylink.watch.journal import Event, check_kind, read_events
from steadylink.watch.opsdb import connect_ops_db, ops_db_path
from steadylink.watch.prometheus_rules import render_rules

# How long a read waits for the guard before it reads ops.db itself (a stopped guard never answers).
LIVE_TIMEOUT = 3.0


def _ask_guard(settings: Settings, path: str) -> Any | None:
    """The running guard's answer, or None when no guard answers (then ops.db is read)."""
    try:
        return GuardClient.find(settings).get(path, timeout=LIVE_TIMEOUT)
    except SteadylinkError:
        return None


def register(app: typer.Typer) -> None:
    app.command("events")(events)
    app.command("alerts")(alerts)
    app.command("ack")(ack)
    app.command("silence")(silence)


def events(
    ctx: typer.Context,
    since: str = typer.Option("1h", "--since", help="How far back: 15m, 1h, 2d or an ISO time."),
    kind: list[str] = typer.Option([], "--kind", help="Only this kind or prefix (deploy, alert.firing)."),
    release: str | None = typer.Option(None, "--release", help="Only events about this release."),
    limit: int = typer.Option(1000, "--limit", min=1, max=100_000, help="At most this many events."),
    as_json: bool = typer.Option(False, "--json", help="Print events as JSON."),
) -> None:
    """What the guard saw and did (its journal), oldest first; works when the guard is down."""
    state = state_of(ctx)
    settings = state.settings()
    start = parse_since(since, now=state.clock.now())
    for prefix in kind:
        check_kind(prefix)  # said even when there is no journal yet
    query = urlencode([("since", start.isoformat()), *(("kind", k) for k in kind), ("limit", limit),
                       *([("release", release)] if release is not None else [])])  # fmt: skip
    live = _ask_guard(settings, f"/ops/v1/events?{query}") if limit <= 10_000 else None
    if live is not None:
        found = [Event.from_json(e) for e in live]
    else:
        found = []
        path = ops_db_path(settings.data_dir.resolve())
        if path.exists():
            conn = connect_ops_db(path, read_only=True)
            try:
                found = read_events(conn, since=start, kinds=kind, release=release, limit=limit)
            finally:
                conn.close()
    if as_json:
        print_json([e.to_json() for e in found])
        return
    if not found:
        print_note(f"no events since {start:%Y-%m-%d %H:%M:%S} UTC")
        return
    for e in found:
        out().print(
            f"{e.at:%Y-%m-%d %H:%M:%S}.{e.at.microsecond // 1000:03d} {e.severity.value:<8} "
            f"{e.kind:<20} {e.release or '-':<14} {e.message}",
            markup=False,
        )


def alerts(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print alerts as JSON.")
) -> None:
    """Open alerts and those of the last 7 days, newest first; works when the guard is down."""
    state = state_of(ctx)
    settings = state.settings()
    live = _ask_guard(settings, "/ops/v1/alerts")
    if live is not None:
        found = [alert_from_json(a) for a in live["alerts"]]
    else:
        since = state.clock.now().timestamp() - 7 * 86_400
        found = list_alerts(ops_db_path(settings.data_dir.resolve()), since=since)
    if as_json:
        print_json([a.to_json() for a in found])
        return
    if not found:
        print_note("no alerts in the last 7 days")
        return
    print_table(
        ["alert", "severity", "state", "since", "acknowledged by", "summary"],
        [(a.alert_id, a.severity, a.state, _when(a.started_at), a.acknowledged_by, a.summary) for a in found],
    )


def ack(
    ctx: typer.Context, alert: str = typer.Argument(..., help="Alert id or rule name (see `alerts`).")
) -> None:
    """Acknowledge an alert: reminders stop, no escalation, PagerDuty is told too."""
    body = GuardClient.find(state_of(ctx).settings()).post(f"/ops/v1/alerts/{alert}/ack")
    out().print(f"acknowledged {body['alert_id']} ({body['rule']}) as {body['acknowledged_by']}")


def silence(
    ctx: typer.Context,
    rule: str = typer.Argument(..., help="Rule name, e.g. front_door_down (see `alerts`)."),
    duration: str = typer.Option("1h", "--for", help="How long: 30m, 1h, 2d."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the journal)."),
) -> None:
    """Silence a rule's notifications for planned work; its alerts are still recorded."""
    parse_span(duration, field="for")  # said here, before asking the guard
    body = GuardClient.find(state_of(ctx).settings()).post(
        "/ops/v1/alerts/silences", {"rule": rule, "for": duration, "reason": reason}
    )
    out().print(f"silenced {body['rule']} until {_when(body['until'])} UTC: {body['reason']}")


def export_prometheus_rules(settings: Settings, output: Path | None) -> None:
    """``steadylink export prometheus-rules``: the watch's rules as a Prometheus rules file."""
    text = render_rules(settings)
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out_file:
            out_file.write(text)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print_note(f"wrote Prometheus recording and alerting rules to {output}")


def print_watch_status(block: dict[str, Any] | None) -> None:
    """The watch's lines of ``steadylink status``: budget left, burn rate, what fires."""
    if not block:
        return
    objective = block["objective"]
    out().print(
        f"availability objective {objective['availability_percent']:g} % "
        f"({objective['budget_minutes_per_year']:g} min a year)"
    )
    for budget in block["budget"]["time_based"]:
        if budget["left_minutes"] >= 0:
            left = (
                f"{budget['left_minutes']:.1f} of {budget['allowed_minutes']:.1f} min left "
                f"({budget['left_percent']:.1f} %)"
            )
        else:
            left = f"spent, {-budget['left_minutes']:.1f} min over its {budget['allowed_minutes']:.1f} min"
        out().print(f"  error budget {budget['span']}: {left}")
    for budget in block["budget"]["request_based"]:
        failed = f"{budget['failures']:,} of {budget['requests']:,} requests failed"
        if budget["left_percent"] >= 0:
            left = f"{budget['left_percent']:.1f} % left"
        else:  # a percentage of a tiny allowance reads as nonsense (-112170 %)
            allowed = budget["allowed_failures"]
            over = f", {budget['failures'] / allowed:,.0f}x that" if allowed else ""
            left = f"spent: {allowed:g} allowed{over}"
        out().print(f"  request budget {budget['span']}: {failed} ({left})")
    burn = block["burn_rate"]
    out().print(
        f"  burn rate now: {burn['probes_5m']}x (5m), {burn['probes_1h']}x (1h), "
        f"requests {burn['requests_1h']}x (1h)"
    )
    firing = block["firing"]
    if not firing:
        out().print("  nothing firing")
    for alert in firing:
        acked = f", acknowledged by {alert['acknowledged_by']}" if alert.get("acknowledged_by") else ""
        out().print(f"  [bold red]FIRING[/] {alert['rule']} ({alert['severity']}{acked}): {alert['summary']}")


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")
