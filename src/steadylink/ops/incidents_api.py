"""``/ops/v1/incidents``: incidents over HTTP, for the CLI, the dashboard and scripts.

Reading needs a ``viewer`` key; opening, notes, status changes, corrections
and the analysis (root cause, five whys, actions) need ``editor``. Bodies
are small JSON (at most ``MAX_JSON_BYTES``: a 1 MB note gets a 413); texts
are stored as typed and escaped wherever they are shown. The lengths of
texts, titles and times are checked by the service, not here, so the API
and the dashboard refuse the same input with the same sentence.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from steadylink.incidents.model import MOMENTS, TEXT_MAX, TITLE_MAX, Action, parse_status
from steadylink.incidents.service import Incidents
from steadylink.links.model import ApiKey
from steadylink.types import Role

Caller = Callable[..., ApiKey]
Need = Callable[[ApiKey, Role, str], None]
# who may do what to incidents, here and on the dashboard alike
READ_ROLE = Role.VIEWER
WRITE_ROLE = Role.EDITOR


class OpenBody(BaseModel):
    title: str = Field(description=f"At most {TITLE_MAX} characters.")
    severity: str = "SEV2"


class NoteBody(BaseModel):
    text: str = Field(description=f"At most {TEXT_MAX:,} characters.")
    public: str | None = None


class StatusBody(BaseModel):
    status: str
    public: str | None = None


class ResolveBody(BaseModel):
    public: str | None = None


class MomentBody(BaseModel):
    moment: str = Field(description=", ".join(MOMENTS))
    at: str = Field(default="", description="ISO 8601; no zone means UTC.", examples=["2026-01-01T12:00:00Z"])
    reason: str = Field(default="", description="Why the moment is corrected; kept in the timeline.")


class ActionBody(BaseModel):
    what: str
    owner: str = Field(default="", max_length=100)
    state: str = Field(default="open", pattern="^(open|doing|done|wont_do)$")


class AnalysisBody(BaseModel):
    root_cause: str | None = None
    whys: list[str] | None = Field(default=None, max_length=10)
    actions: list[ActionBody] | None = Field(default=None, max_length=50)
    severity: str | None = None
    public_title: str | None = None


def include_incidents(app: FastAPI, incidents: Incidents, *, caller: Caller, need: Need) -> None:
    router = APIRouter(prefix="/ops/v1/incidents")
    Key = Annotated[ApiKey, Depends(caller)]

    @router.get("")
    def list_incidents(key: Key) -> list[dict[str, Any]]:
        need(key, READ_ROLE, "incidents")
        return [i.to_json() for i in incidents.store.list_incidents()]

    @router.post("", status_code=201)
    def open_incident(body: OpenBody, key: Key) -> dict[str, Any]:
        need(key, WRITE_ROLE, "incident open")
        incident = incidents.open(title=body.title, severity=body.severity, by=key.name)
        return incidents.detail(incident.id)

    @router.get("/{incident_id}")
    def show(incident_id: int, key: Key) -> dict[str, Any]:
        need(key, READ_ROLE, "incidents")
        return incidents.detail(incident_id)

    @router.post("/{incident_id}/notes", status_code=201)
    def note(incident_id: int, body: NoteBody, key: Key) -> dict[str, Any]:
        need(key, WRITE_ROLE, "incident note")
        incidents.note(incident_id, text=body.text, public_text=body.public, by=key.name)
        return incidents.detail(incident_id)

    @router.post("/{incident_id}/status")
    def status(incident_id: int, body: StatusBody, key: Key) -> dict[str, Any]:
        need(key, WRITE_ROLE, "incident status")
        incidents.set_status(
            incident_id, status=parse_status(body.status), public_text=body.public, by=key.name
        )
        return incidents.detail(incident_id)

    @router.post("/{incident_id}/resolve")
    def resolve(incident_id: int, body: ResolveBody, key: Key) -> dict[str, Any]:
        need(key, WRITE_ROLE, "incident resolve")
        incidents.resolve(incident_id, public_text=body.public, by=key.name)
        return incidents.detail(incident_id)

    @router.post("/{incident_id}/moments")
    def correct(incident_id: int, body: MomentBody, key: Key) -> dict[str, Any]:
        need(key, WRITE_ROLE, "incident correct")
        incidents.correct(incident_id, moment=body.moment, at=body.at, reason=body.reason, by=key.name)
        return incidents.detail(incident_id)

    @router.patch("/{incident_id}")
    def analyse(incident_id: int, body: AnalysisBody, key: Key) -> dict[str, Any]:
        need(key, WRITE_ROLE, "incident analysis")
        actions = (
            [Action(a.what, a.owner, a.state) for a in body.actions] if body.actions is not None else None
        )
        incidents.analyse(
            incident_id, by=key.name, root_cause=body.root_cause, whys=body.whys, actions=actions,
            severity=body.severity, public_title=body.public_title,
        )  # fmt: skip
        return incidents.detail(incident_id)

    @router.get("/{incident_id}/report")
    def report(incident_id: int, key: Key, format: str = "md") -> Response:
        need(key, READ_ROLE, "incident report")
        from steadylink.incidents.report import render_report

        text = render_report(incidents, incident_id, fmt=format)
        if format == "html":
            return HTMLResponse(text, headers={"Content-Security-Policy": REPORT_CSP})
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    app.include_router(router)


# The report is one file with its chart inline (data: URI) and its style in a <style> block.
REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)
