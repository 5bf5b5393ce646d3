"""Opening, noting, status changes, reopening and corrections; all kept in ops.db."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import InvalidInput, NotFound
from steadylink.incidents.model import Status
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.watch.journal import Journal

from .conftest import Told


def test_an_incident_survives_a_restart(tmp_path: Path, incidents: Incidents, clock: FakeClock) -> None:
    opened = incidents.open(title="Redirects fail", by="alice", severity="SEV1")
    incidents.note(opened.id, text="looking at the logs", by="alice")
    again = IncidentStore.for_data_dir(tmp_path, clock=clock)
    assert again.get(opened.id).title == "Redirects fail"
    assert [u.kind for u in again.updates(opened.id)] == ["opened", "note"]
    assert again.open_incident() is not None
    again.close()


def test_status_changes_are_journalled_and_public_text_is_told(
    incidents: Incidents, journal: Journal, told: Told, clock: FakeClock
) -> None:
    opened = incidents.open(title="Slow", by="alice")
    clock.advance(60)
    incidents.set_status(opened.id, status=Status.IDENTIFIED, by="bob", public_text="We found the cause.")
    clock.advance(60)
    resolved = incidents.resolve(opened.id, by="bob")
    assert resolved.status == Status.RESOLVED and resolved.resolved_at == clock.now()
    assert told.messages == [("steadylink: Service disruption (identified)", "We found the cause.")]
    kinds = [e.kind for e in journal.read(kinds=["incident"])]
    assert kinds == ["incident.opened", "incident.updated", "incident.resolved"]


def test_a_reopen_is_recorded_and_going_back_otherwise_refused(incidents: Incidents) -> None:
    opened = incidents.open(title="x", by="a")
    incidents.set_status(opened.id, status=Status.MONITORING, by="a")
    with pytest.raises(InvalidInput):
        incidents.set_status(opened.id, status=Status.INVESTIGATING, by="a")
    incidents.resolve(opened.id, by="a")
    reopened = incidents.set_status(opened.id, status=Status.INVESTIGATING, by="a")
    assert reopened.resolved_at is None and reopened.is_open
    assert incidents.store.updates(opened.id)[-1].kind == "reopen"


def test_unknown_ids_and_bad_notes_are_refused(incidents: Incidents) -> None:
    with pytest.raises(NotFound):
        incidents.note(999, text="hi", by="a")
    opened = incidents.open(title="x", by="a")
    with pytest.raises(InvalidInput):
        incidents.note(opened.id, text="x" * 1_000_000, by="a")
    assert [u.kind for u in incidents.store.updates(opened.id)] == ["opened"]  # nothing half-written


def test_a_correction_wins_over_the_derived_moment(incidents: Incidents, clock: FakeClock) -> None:
    opened = incidents.open(title="x", by="a")
    earlier = clock.now() - timedelta(minutes=5)
    incidents.correct(opened.id, moment="first_bad_signal", at=earlier, by="a")
    detail = incidents.detail(opened.id)
    assert detail["moments"]["first_bad_signal"] == earlier.isoformat().replace("+00:00", "Z")
    with pytest.raises(InvalidInput):
        incidents.correct(opened.id, moment="lunch", at=earlier, by="a")
