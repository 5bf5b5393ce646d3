"""Everything a post-incident report states, gathered from the data folder.

The incident (moments, notes, analysis), its impact from the front door's
figures, its journal events, the records of the releases involved (gates,
staging, canary verdicts), the top error groups of the window, the release
diff narrowed to the failing frame, and the chart. Facts only: the wording is
``report.py``'s job.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from steadylink.clock import utc
from steadylink.errors import Conflict, NotFound, SteadylinkError
from steadylink.incidents.chart import MARKS, Mark, read_series, render_chart
from steadylink.incidents.diff import Change, changed_lines, nearest_changes, tree_of
from steadylink.incidents.error_hunt import ErrorGroup, hunt_workers, innermost_app_frame, short_path
from steadylink.incidents.impact import Impact, impact_from_json, read_impact
from steadylink.incidents.model import Incident, Update
from steadylink.incidents.store import IncidentStore
from steadylink.incidents.timeline import Entry, build_timeline, derive_moments
from steadylink.release.history import ReleaseRecord, list_records
from steadylink.watch.journal import Event
from steadylink.watch.opsdb import connect_ops_db, ops_db_path

MARGIN = timedelta(seconds=30)  # at least this much before and after, for context


@dataclass
class ReportFacts:
    incident: Incident
    moments: dict[str, datetime | None]
    events: list[Event]
    updates: list[Update]
    timeline: list[Entry]
    impact: Impact
    records: list[ReleaseRecord]
    bad_release: ReleaseRecord | None
    previous_release: str | None
    errors: list[ErrorGroup]
    changes: list[Change]
    diff_note: str
    chart_png: bytes | None
    window: tuple[datetime, datetime]
    extra: dict[str, Any] = field(default_factory=dict)

    def first(self, kind: str) -> Event | None:
        return next((e for e in self.events if e.kind == kind), None)


class EmptyIncident(Conflict):
    """A report needs facts; an incident with no journal events has none the guard saw (a 409,
    not a 500: the incident is there, it just holds nothing to report yet)."""


def gather_facts(data_dir: Path, incident_id: int, *, now: datetime, with_chart: bool = True) -> ReportFacts:
    data_dir = data_dir.resolve()
    if not ops_db_path(data_dir).exists():
        raise NotFound(f"No incident {incident_id}: this data folder has no incidents yet.")
    store = IncidentStore.for_data_dir(data_dir, read_only=True)
    conn = connect_ops_db(ops_db_path(data_dir), read_only=True)
    try:
        incident = store.get(incident_id)
        events = store.events(incident.id)
        updates = store.updates(incident.id)
        if not events:
            raise EmptyIncident(
                f"Incident {incident.id} has no events from the guard, so there are no facts to report; "
                f"add notes (`steadylink incident {incident.id} note TEXT`) and write the report by hand."
            )
        moments = derive_moments(incident, events, updates)
        start = moments["first_bad_signal"] or incident.opened_at
        end = moments["mitigated"] or moments["resolved"] or utc(now)
        impact = read_impact(conn, since=start, until=max(end, start))
        if impact.requests == 0 and incident.impact:
            impact = impact_from_json(incident.impact)  # the per-second figures are pruned by now
        first, last = min(start, events[0].at), max(end, events[-1].at)
        margin = max(MARGIN, (last - first) / 4)
        window = (first - margin, last + margin)
        records = _records_of(data_dir, incident.releases)
        bad = _bad_release(records, events)
        previous = _previous_release(data_dir, bad)
        errors = hunt_workers(data_dir, since=utc(now) - window[0] + timedelta(minutes=1), now=now)
        involved = set(incident.releases)
        errors = [g for g in errors if not involved or g.releases & involved or not g.releases][:5]
        changes, note = _diff(data_dir, bad, previous, errors)
        chart = None
        if with_chart:
            # a page is a notification about an alert; status-page news to subscribers is not one
            marks = [
                Mark(e.at, MARKS[e.kind][0])
                for e in events
                if e.kind in MARKS and (e.kind != "notify.sent" or e.body.get("alert_id"))
            ]
            chart = render_chart(
                read_series(conn, *window), marks, title=f"Incident {incident.id}: front door"
            )
        return ReportFacts(
            incident=incident,
            moments=moments,
            events=events,
            updates=updates,
            timeline=build_timeline(events, updates),
            impact=impact,
            records=records,
            bad_release=bad,
            previous_release=previous,
            errors=errors,
            changes=changes,
            diff_note=note,
            chart_png=chart,
            window=window,
        )
    finally:
        conn.close()
        store.close()


def _records_of(data_dir: Path, releases: list[str]) -> list[ReleaseRecord]:
    wanted = set(releases)
    with contextlib.suppress(SteadylinkError):
        return [r for r in list_records(data_dir) if r.id in wanted]
    return []


def _bad_release(records: list[ReleaseRecord], events: list[Event]) -> ReleaseRecord | None:
    rolled = [e.release for e in events if e.kind == "release.rolled_back" and e.release]
    for release in rolled:
        found = next((r for r in records if r.id == release), None)
        if found is not None:
            return found
    return next((r for r in records if r.verdict in ("rolled_back", "promoted")), None)


def _previous_release(data_dir: Path, bad: ReleaseRecord | None) -> str | None:
    """The release that served before ``bad``: the newest promoted one older than it."""
    if bad is None:
        return None
    with contextlib.suppress(SteadylinkError):
        for record in list_records(data_dir):
            if record.created_at < bad.created_at and record.verdict == "promoted":
                return record.id
    older = sorted(p.name for p in (data_dir / "releases").glob("*") if p.is_dir() and p.name < bad.id)
    return older[-1] if older else None


def _diff(
    data_dir: Path, bad: ReleaseRecord | None, previous: str | None, errors: list[ErrorGroup]
) -> tuple[list[Change], str]:
    if bad is None:
        return [], "No release was involved, so there is no diff."
    new_tree = tree_of(data_dir, bad.id)
    old_tree = tree_of(data_dir, previous) if previous else None
    if new_tree is None or old_tree is None:
        missing = bad.id if new_tree is None else (previous or "the previous release")
        return (
            [],
            f"The source tree of {missing} is no longer in releases/ (pruned); compare the commits with git.",
        )
    culprit = None
    for group in errors:
        if bad.id in group.releases or not group.releases:
            culprit = innermost_app_frame(group.frames)
            break
    changes = nearest_changes(
        changed_lines(old_tree, new_tree),
        file=short_path(culprit.file) if culprit else None,
        line=culprit.line if culprit else None,
    )
    where = f" nearest {short_path(culprit.file)}:{culprit.line}" if culprit else ""
    return changes, f"{previous} → {bad.id}, the changed lines{where}:"
