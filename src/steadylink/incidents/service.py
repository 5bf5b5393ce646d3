"""What people (and the guard) do to incidents: open, note, change status, resolve, correct.

Keyword-only functions over an ``IncidentStore``; each change is also said in
the journal (``incident.opened`` / ``incident.updated`` / ``incident.resolved``),
and an update marked public is sent to the status page's subscribers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steadylink.clock import utc
from steadylink.errors import InvalidInput
from steadylink.incidents.impact import Impact, impact_from_json
from steadylink.incidents.model import (
    MOMENT_NOUNS,
    Action,
    Incident,
    Status,
    Update,
    clean_text,
    clean_title,
    iso,
    parse_moment,
    parse_severity,
    parse_time,
    plan_transition,
    said,
)
from steadylink.incidents.store import IncidentStore
from steadylink.incidents.subscribers import NoSubscribers, Subscribers
from steadylink.incidents.timeline import build_timeline, check_correction, derive_moments
from steadylink.watch.journal import Journal


@dataclass
class Incidents:
    """The incident service the guard (its tracker, its API) and the dashboard share."""

    store: IncidentStore
    journal: Journal | None = None
    subscribers: Subscribers = NoSubscribers()  # noqa: RUF009 (immutable, stateless)
    status_title: str = "steadylink"

    def open(self, *, title: str, by: str, severity: int | str = 2, at: datetime | None = None) -> Incident:
        incident = self.store.create(
            title=clean_title(title), severity=parse_severity(severity), opened_by=by, at=at
        )
        self.store.add_update(
            incident.id,
            kind="opened",
            author=by,
            text=f"Opened: {incident.title}",
            status=Status.INVESTIGATING,
            at=at,
        )
        self._say("incident.opened", incident, f"incident {incident.id} opened: {incident.title}", by=by)
        return incident

    def note(self, incident_id: int, *, text: str, by: str, public_text: str | None = None) -> Update:
        incident = self.store.get(incident_id)
        public = clean_text(public_text, field_name="public") if public_text else None
        update = self.store.add_update(
            incident.id, kind="note", author=by, text=clean_text(text, field_name="text"), public_text=public
        )
        self._say("incident.updated", incident, f"incident {incident.id}: note by {by}", by=by)
        self._tell(incident, public)
        return update

    def set_status(
        self, incident_id: int, *, status: Status, by: str, public_text: str | None = None
    ) -> Incident:
        incident = self.store.get(incident_id)
        transition = plan_transition(incident.status, status)
        public = clean_text(public_text, field_name="public") if public_text else None
        was = incident.status
        incident.status = transition.to
        incident.resolved_at = utc(self.store.clock.now()) if transition.to == Status.RESOLVED else None
        if transition.is_reopen:
            incident.corrections.pop("resolved", None)
        if transition.to == Status.RESOLVED:
            incident.impact = self._impact(incident).to_json()
        kind = "reopen" if transition.is_reopen else "status"
        text = (
            f"Reopened ({was.value} → {status.value})" if transition.is_reopen else f"Status: {status.value}"
        )
        self.store.save_with_update(
            incident, kind=kind, author=by, text=text, status=status, public_text=public
        )
        event = "incident.resolved" if status == Status.RESOLVED else "incident.updated"
        self._say(event, incident, f"incident {incident.id}: {text.lower()} by {by}", by=by)
        self._tell(incident, public)
        return incident

    def resolve(self, incident_id: int, *, by: str, public_text: str | None = None) -> Incident:
        return self.set_status(incident_id, status=Status.RESOLVED, by=by, public_text=public_text)

    def correct(self, incident_id: int, *, moment: str, at: datetime | str, by: str, reason: str) -> Incident:
        """Set one of the incident's moments by hand (the API and the dashboard both come here).

        ``at`` is a datetime or the text a person typed (``parse_time``: no zone
        means UTC). Refused, with nothing written, when the moment is unknown,
        the time malformed, the reason empty, the time in the future or out of order with the other moments
        (``check_correction``), or ``resolved`` of an incident not resolved.
        Otherwise the timeline says who moved which moment from what to what
        and why (in the same transaction as the change), the journal says it
        too, and a resolved incident's impact figures are computed again over
        the corrected window.
        """
        name = parse_moment(moment)
        incident = self.store.get(incident_id)
        when = parse_time(at) if isinstance(at, str) else utc(at)
        why = clean_text(reason, field_name="reason")
        label = name.replace("_", " ")
        if name == "resolved" and incident.is_open:
            raise InvalidInput(
                f"Incident {incident.id} is {incident.status.value}, not resolved: there is no resolution"
                " to correct yet.",
                field="moment",
            )
        moments = derive_moments(incident, self.store.events(incident.id), self.store.updates(incident.id))
        was = moments[name]
        if was is not None and int(was.timestamp()) == int(when.timestamp()):
            raise InvalidInput(f"{MOMENT_NOUNS[name].capitalize()} is already {said(was)}.", field="at")
        check_correction(moments, name, when, now=utc(self.store.clock.now()))
        incident.corrections[name] = when
        if not incident.is_open:
            incident.impact = self._recomputed_impact(incident)
        text = f"{label} corrected from {said(was) if was else 'not set'} to {said(when)}: {why}"
        self.store.save_with_update(incident, kind="correction", author=by, text=text)
        self._say(
            "incident.updated",
            incident,
            f"incident {incident.id}: {label} corrected by {by}",
            by=by,
            moment=name,
            was=iso(was) if was else None,
            to=iso(when),
            reason=why,
        )
        return incident

    def impact(self, incident_id: int) -> Impact:
        """The incident's impact as it stands: over its window so far, or as kept at resolution when
        the per-second figures of that window are pruned."""
        incident = self.store.get(incident_id)
        computed = self._impact(incident)
        if computed.requests == 0 and incident.impact:
            return impact_from_json(incident.impact)
        return computed

    def analyse(
        self,
        incident_id: int,
        *,
        by: str,
        root_cause: str | None = None,
        whys: list[str] | None = None,
        actions: list[Action] | None = None,
        severity: str | None = None,
        public_title: str | None = None,
    ) -> Incident:
        incident = self.store.get(incident_id)
        if root_cause is not None:
            incident.root_cause = clean_text(root_cause, field_name="root_cause")
        if whys is not None:
            incident.whys = [clean_text(w, field_name="whys") for w in whys][:10]
        if actions is not None:
            incident.actions = [
                Action(clean_text(a.what, field_name="actions"), a.owner[:100], a.state) for a in actions
            ][:50]
        if severity is not None:
            incident.severity = parse_severity(severity)
        if public_title is not None:
            incident.public_title = clean_title(public_title) if public_title.strip() else ""
        self.store.save(incident)
        self._say("incident.updated", incident, f"incident {incident.id}: analysis edited by {by}", by=by)
        return incident

    def detail(self, incident_id: int) -> dict[str, Any]:
        """The incident with its moments and timeline, as the API and ``incident ID --json`` show it."""
        incident = self.store.get(incident_id)
        events = self.store.events(incident.id)
        updates = self.store.updates(incident.id)
        moments = derive_moments(incident, events, updates)
        body = incident.to_json()
        body["moments"] = {
            k: (v.isoformat(timespec="seconds").replace("+00:00", "Z") if v else None)
            for k, v in moments.items()
        }
        body["timeline"] = [e.to_json() for e in build_timeline(events, updates)]
        body["impact"] = self.impact(incident.id).to_json()
        return body

    def _recomputed_impact(self, incident: Incident) -> dict[str, Any] | None:
        computed = self._impact(incident)
        if computed.requests == 0 and incident.impact and incident.impact.get("requests"):
            return incident.impact  # that window's per-second figures are pruned: keep what was counted
        return computed.to_json()

    def _impact(self, incident: Incident) -> Impact:
        moments = derive_moments(incident, self.store.events(incident.id), self.store.updates(incident.id))
        start = moments["first_bad_signal"] or incident.opened_at
        end = moments["mitigated"] or moments["resolved"] or utc(self.store.clock.now())
        return self.store.impact(start, max(start, end))

    def _say(self, kind: str, incident: Incident, message: str, *, by: str, **details: object) -> None:
        if self.journal is not None:
            self.journal.append(
                kind,
                message,
                severity="warning" if kind == "incident.opened" else "info",
                body={"incident_id": incident.id, "status": incident.status.value, "by": by, **details},
            )

    def _tell(self, incident: Incident, public: str | None) -> None:
        if public:
            title = incident.public_title or "Service disruption"
            self.subscribers.tell(f"{self.status_title}: {title} ({incident.status.value})", public)
