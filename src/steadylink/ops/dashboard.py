"""The ops dashboard at ``/`` on the ops port: sign in with an API key, then see and act.

What is serving and the rollout in progress (refreshed by ``ops.js`` from
``/dash/live.json``), the error budget when the watch part reports one,
firing alerts with an acknowledge button, incidents with their timelines,
notes and reports, the release history with the step that caught each bad
release, and a rollback button for ``deployer`` keys (confirmed, audited).
Pages are rendered on the server; every form carries the session's CSRF
token; a bad form answers the page again with one sentence and a 4xx, and an
incident id that names none answers the overview with one sentence and a 404.
The incident page also corrects its moments, one small form each, through the
same service call as ``POST /ops/v1/incidents/ID/moments``.

The incident forms post ``multipart/form-data``: URL-encoding triples every
byte that is not ASCII, so a note typed in Cyrillic or Chinese would pass the
64 KB limit of encoded bodies long before the 10,000 characters a note may
have. Their texts are checked by the service (length, emptiness), so the
dashboard and the API refuse the same input with the same sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from steadylink.errors import Forbidden, InvalidInput, NotFound, SteadylinkError
from steadylink.incidents.model import Action, Status, parse_status, quoted
from steadylink.incidents.service import Incidents
from steadylink.ops.alerts_view import firing_alerts
from steadylink.ops.incidents_api import REPORT_CSP, WRITE_ROLE
from steadylink.ops.keys import OpsKeys
from steadylink.ops.pages import render_page
from steadylink.ops.sessions import COOKIE, SESSION_SECONDS, Session, Sessions, is_csrf_ok
from steadylink.release.audit import record_action
from steadylink.release.guard import Guard
from steadylink.release.history import list_records
from steadylink.types import Role

Text = Annotated[str, Form()]  # lengths: the service's (a body is at most the body limit anyway)
Csrf = Annotated[str, Form(alias="csrf", max_length=100)]
WatchStatus = Callable[[], dict[str, Any] | None]  # the watch part's status (budgets), when it runs
# The watch's own acknowledgement (``Watcher.acknowledge``: the same path as ``steadylink ack`` and
# POST /ops/v1/alerts/{id}/ack), so re-notification and escalation stop and PagerDuty is told.
Acknowledge = Callable[..., object]
IN_FLIGHT = ("building", "gated", "staged", "canary")


def include_dashboard(
    app: FastAPI,
    guard: Guard,
    keys: OpsKeys,
    incidents: Incidents,
    *,
    watch_status: WatchStatus | None = None,
    acknowledge_alert: Acknowledge | None = None,
) -> None:
    sessions = Sessions(
        guard.clock,
        is_key_active=keys.is_active,
    )

    def session_of(request: Request) -> Session | None:
        return sessions.find(request.cookies.get(COOKIE))

    def signed_in(request: Request, csrf: str | None = None) -> Session:
        session = session_of(request)
        if session is None:
            raise _SignIn()
        if request.method == "POST" and not is_csrf_ok(session, csrf):
            raise Forbidden("This form is stale or came from another site; reload the page and try again.")
        return session

    def page(request: Request, session: Session, *, flash: str = "", status: int = 200) -> HTMLResponse:
        return render_page(
            "dashboard.html",
            http_status=status,
            s=session,
            flash=flash,
            **overview(guard, incidents, watch_status),
        )

    def incident_page(
        request: Request,
        session: Session,
        incident_id: int,
        *,
        flash: str = "",
        status: int = 200,
        typed: dict[str, str] | None = None,
    ) -> HTMLResponse:
        try:
            detail = incidents.detail(incident_id)
        except NotFound:
            return page(request, session, flash=no_incident(str(incident_id)), status=404)
        return render_page(
            "incident.html",
            http_status=status,
            s=session,
            inc=detail,
            flash=flash,
            statuses=[x.value for x in Status],
            can_write=session.role >= WRITE_ROLE,
            typed=typed or {},
        )

    @app.exception_handler(_SignIn)
    def ask_to_sign_in(request: Request, exc: Exception) -> Response:
        if request.method == "GET" and request.url.path != "/":
            return RedirectResponse("/", status_code=303)
        return render_page("signin.html", http_status=401 if request.url.path != "/" else 200, flash="")

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> HTMLResponse:
        return page(request, signed_in(request))

    @app.post("/dash/signin", include_in_schema=False)
    def sign_in(request: Request, key: Annotated[str, Form(max_length=200)] = "") -> Response:
        found = keys.authenticate(key.strip()) if key.strip() else None
        if found is None:
            return render_page("signin.html", http_status=401, flash="This API key is unknown or revoked.")
        session = sessions.start(key_id=found.id, name=found.name, role=Role(found.role))
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @app.post("/dash/signout", include_in_schema=False)
    def sign_out(request: Request, csrf: Csrf = "") -> Response:
        session = signed_in(request, csrf)
        sessions.end(session.id)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/dash/live.json", include_in_schema=False)
    def live(request: Request) -> JSONResponse:
        signed_in(request)
        view = overview(guard, incidents, watch_status)
        return JSONResponse(
            {k: view[k] for k in ("status", "rollout")}, headers={"Cache-Control": "no-store"}
        )

    @app.post("/dash/incidents", include_in_schema=False)
    def open_incident(
        request: Request, title: Text = "", severity: Text = "SEV2", csrf: Csrf = ""
    ) -> Response:
        session = signed_in(request, csrf)
        try:
            need_role(session, WRITE_ROLE, "open an incident")
            incident = incidents.open(title=title, severity=severity, by=session.name)
        except SteadylinkError as exc:
            return page(request, session, flash=exc.message, status=exc.status)
        return RedirectResponse(f"/dash/incidents/{incident.id}", status_code=303)

    @app.get("/dash/incidents/{incident_id}", include_in_schema=False)
    def show_incident(request: Request, incident_id: str) -> HTMLResponse:
        session = signed_in(request)
        number = parse_incident_id(incident_id)
        if number is None:
            return page(request, session, flash=no_incident(incident_id), status=404)
        return incident_page(request, session, number)

    @app.post("/dash/incidents/{incident_id}", include_in_schema=False)
    def update_incident(
        request: Request,
        incident_id: str,
        action: Text = "",
        text: Text = "",
        public: Text = "",
        status: Text = "",
        root_cause: Text = "",
        whys: Text = "",
        action_what: Text = "",
        action_owner: Text = "",
        moment: Text = "",
        at: Text = "",
        reason: Text = "",
        csrf: Csrf = "",
    ) -> Response:
        session = signed_in(request, csrf)
        number = parse_incident_id(incident_id)
        if number is None:
            return page(request, session, flash=no_incident(incident_id), status=404)
        typed: dict[str, str] = {}
        try:
            need_role(session, WRITE_ROLE, "change an incident")
            if action == "note":
                incidents.note(number, text=text, public_text=public or None, by=session.name)
            elif action == "status":
                incidents.set_status(
                    number, status=parse_status(status), public_text=public or None, by=session.name
                )
            elif action == "analysis":
                current = incidents.store.get(number)
                added = [Action(action_what, action_owner)] if action_what.strip() else []
                incidents.analyse(
                    number,
                    by=session.name,
                    root_cause=root_cause if root_cause.strip() else None,
                    whys=[w for w in whys.splitlines() if w.strip()] or None,
                    actions=current.actions + added if added else None,
                )
            elif action == "moment":
                # the form is shown again as typed, open, if it is refused
                typed = {"moment": moment, "at": at[:100], "reason": reason[:10_000]}
                incidents.correct(number, moment=moment, at=at, reason=reason, by=session.name)
                return RedirectResponse(f"/dash/incidents/{number}#moments", status_code=303)
            else:
                raise InvalidInput(f"Unknown action {quoted(action)}.", field="action")
        except NotFound:
            return page(request, session, flash=no_incident(incident_id), status=404)
        except SteadylinkError as exc:
            return incident_page(request, session, number, flash=exc.message, status=exc.status, typed=typed)
        return RedirectResponse(f"/dash/incidents/{number}", status_code=303)

    @app.get("/dash/incidents/{incident_id}/report", include_in_schema=False)
    def report(request: Request, incident_id: str, format: str = "html") -> Response:
        session = signed_in(request)
        from steadylink.incidents.report import render_report

        number = parse_incident_id(incident_id)
        if number is None:
            return page(request, session, flash=no_incident(incident_id), status=404)
        try:
            text = render_report(incidents, number, fmt=format, data_dir=guard.data_dir)
        except SteadylinkError as exc:
            return incident_page(request, session, number, flash=exc.message, status=exc.status)
        if format == "md":
            return Response(
                text,
                media_type="text/markdown; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="incident-{number}.md"'},
            )
        return HTMLResponse(
            text, headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff"}
        )

    @app.post("/dash/alerts/{alert_id}/ack", include_in_schema=False)
    def acknowledge(request: Request, alert_id: str, csrf: Csrf = "") -> Response:
        session = signed_in(request, csrf)
        try:
            need_role(session, Role.DEPLOYER, "acknowledge an alert")
            if acknowledge_alert is None:
                raise InvalidInput("The watch is not running in this guard.", field="alert")
            if len(alert_id) > 200:
                raise InvalidInput("That is not an alert of this guard.", field="alert")
            acknowledge_alert(alert_id, by=session.name)
        except SteadylinkError as exc:
            audit(
                guard,
                session.name,
                session.role,
                "ack",
                alert_id[:200],
                "refused",
                detail={"reason": exc.message},
            )
            return page(request, session, flash=exc.message, status=exc.status)
        audit(guard, session.name, session.role, "ack", alert_id, "done", detail={"from": "dashboard"})
        return RedirectResponse("/#alerts", status_code=303)

    @app.post("/dash/rollback", include_in_schema=False)
    def rollback(request: Request, confirm: Text = "", csrf: Csrf = "") -> Response:
        session = signed_in(request, csrf)
        try:
            need_role(session, Role.DEPLOYER, "rollback")
            if confirm != "yes":
                raise InvalidInput("Tick the box to confirm the rollback.", field="confirm")
            target = guard.rollback(None, progress=lambda line: None)
        except SteadylinkError as exc:
            audit(
                guard,
                session.name,
                session.role,
                "rollback",
                "previous",
                "refused",
                detail={"reason": exc.message},
            )
            return page(request, session, flash=exc.message, status=exc.status)
        audit(guard, session.name, session.role, "rollback", target, "done", detail={"from": "dashboard"})
        return page(request, session, flash=f"Rolled back: {target} serves all traffic.")


def audit(
    guard: Guard, actor: str, role: Role, action: str, target: str, outcome: str, *, detail: dict[str, object]
) -> None:
    record_action(
        guard.data_dir,
        actor=actor,
        role=role,
        action=action,
        target=target,
        outcome=outcome,
        clock=guard.clock,
        detail=detail,
    )


class _SignIn(Exception):
    """No session: the sign-in page (GET elsewhere than / is sent there)."""


def parse_incident_id(text: str) -> int | None:
    """The incident number in a dashboard URL; None when it is no number at all."""
    return int(text) if text.isdigit() and len(text) <= 12 else None


def no_incident(text: str) -> str:
    return f"There is no incident {text if text.isdigit() else quoted(text)}; the overview lists them."


def need_role(session: Session, role: Role, action: str) -> None:
    if session.role < role:
        raise Forbidden(f"To {action} you need the {role.label} role; you signed in as {session.role.label}.")


def budgets_of(watched: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The error budgets the watch part reports (``budget.time_based``: span, allowed, left…), if any."""
    budget = (watched or {}).get("budget")
    if not isinstance(budget, dict):
        return []
    spans = budget.get("time_based")
    return (
        [b for b in spans if isinstance(b, dict) and "left_minutes" in b] if isinstance(spans, list) else []
    )


def overview(guard: Guard, incidents: Incidents, watch_status: WatchStatus | None = None) -> dict[str, Any]:
    status = guard.status()
    records = list_records(guard.data_dir)[:20]
    listed = incidents.store.list_incidents(limit=50)
    newest = records[0] if records else None
    rollout = None
    if newest is not None and newest.verdict in IN_FLIGHT:
        rollout = {
            "release": newest.id,
            "verdict": newest.verdict,
            "steps": [f"{s.name} {s.verdict}" for s in newest.steps],
        }
    events = (
        incidents.journal.read(since=guard.clock.now() - timedelta(days=7), kinds=["alert"], limit=10_000)
        if incidents.journal is not None
        else []
    )
    return {
        "status": status,
        "rollout": rollout,
        "budgets": budgets_of(watch_status() if watch_status is not None else status),
        "alerts": firing_alerts(events),
        "incidents": [i.to_json() for i in listed],
        "incident_of": {release: i.id for i in reversed(listed) for release in i.releases},
        "releases": [r.to_json() for r in records],
    }
