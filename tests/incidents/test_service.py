"""Opening, noting, status changes, reopening and corrections; all kept in ops.db."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import InvalidInput, NotFound
from steadylink.incidents.model import Status
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.watch.journal import Journal

from .conftest import Told
from .recorded import record_incident


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
    for unknown in (999, 0, -1, 2**63, 10**20):  # past SQLite's integers too: not found, not an error
        with pytest.raises(NotFound, match=f"No incident {unknown};"):
            incidents.note(unknown, text="hi", by="a")
    opened = incidents.open(title="x", by="a")
    with pytest.raises(InvalidInput):
        incidents.note(opened.id, text="x" * 1_000_000, by="a")
    assert [u.kind for u in incidents.store.updates(opened.id)] == ["opened"]  # nothing half-written


def test_a_correction_wins_and_says_who_moved_what_from_what_to_what(
    incidents: Incidents, journal: Journal, clock: FakeClock
) -> None:
    opened = incidents.open(title="x", by="a")
    clock.advance(600)
    earlier = opened.opened_at - timedelta(minutes=5)
    incidents.correct(
        opened.id, moment="first_bad_signal", at=earlier, by="bob", reason="the 5xx began before the page"
    )
    detail = incidents.detail(opened.id)
    assert detail["moments"]["first_bad_signal"] == "2025-12-31T23:55:00Z"
    assert detail["corrections"] == {"first_bad_signal": "2025-12-31T23:55:00Z"}
    line = detail["timeline"][-1]
    assert (line["kind"], line["source"]) == ("correction", "bob")
    assert line["text"] == (
        "first bad signal corrected from 2026-01-01 00:00:00 UTC to 2025-12-31 23:55:00 UTC:"
        " the 5xx began before the page"
    )
    (said,) = [e for e in journal.read(kinds=["incident.updated"]) if "corrected" in e.message]
    assert said.body["by"] == "bob" and said.body["moment"] == "first_bad_signal"
    assert (said.body["was"], said.body["to"]) == ("2026-01-01T00:00:00Z", "2025-12-31T23:55:00Z")
    # typed as on the dashboard: a space or a T, no zone means UTC, and the moment as it reads
    incidents.correct(opened.id, moment="detected", at="2025-12-31 23:58", by="bob", reason="the page")
    assert incidents.detail(opened.id)["moments"]["detected"] == "2025-12-31T23:58:00Z"


@pytest.mark.parametrize(
    ("moment", "at", "reason", "field", "says"),
    [
        ("lunch", "2026-01-01 00:05", "r", "moment", "Moment 'lunch' is not one of"),
        ("detected", "yesterday", "r", "at", "'yesterday' is not a time; give it in UTC"),
        ("detected", "2026-13-01 00:00", "r", "at", "is not a time"),
        ("detected", "", "r", "at", "Give the time in UTC"),
        ("detected", "2026-01-01 00:05", "  ", "reason", "The reason is empty."),
        ("detected", "2026-01-01 00:20:01", "r", "at", "The detection cannot be in the future (it is 2026-01-01 00:20:00 UTC now)."),
        ("detected", "2025-12-31 23:00", "r", "at", "The detection cannot be before the first bad signal (2026-01-01 00:00:00 UTC)."),
        ("first_bad_signal", "2026-01-01 00:15", "r", "at", "The first bad signal cannot be after the detection (2026-01-01 00:01:00 UTC)."),
        ("resolved", "2025-12-31 23:59", "r", "at", "The resolution cannot be before the first bad signal"),
        ("resolved", "2026-01-01 00:04", "r", "at", "The resolution cannot be before the acknowledgement (2026-01-01 00:05:00 UTC)."),
        ("acknowledged", "2026-01-01 00:00:30", "r", "at", "The acknowledgement cannot be before the detection (2026-01-01 00:01:00 UTC)."),
        ("mitigated", "2026-01-01 00:12", "r", "at", "The mitigation cannot be after the resolution (2026-01-01 00:10:00 UTC)."),
        ("resolved", "2026-01-01 00:10:00", "r", "at", "The resolution is already 2026-01-01 00:10:00 UTC."),
    ],
)
def test_a_correction_that_cannot_have_been_is_one_sentence_and_writes_nothing(
    incidents: Incidents, journal: Journal, clock: FakeClock, moment: str, at: str, reason: str,
    field: str, says: str,
) -> None:  # fmt: skip
    opened = incidents.open(title="x", by="a")
    clock.advance(60)
    incidents.correct(opened.id, moment="detected", at="2026-01-01 00:01", by="a", reason="the alert")
    clock.advance(240)
    incidents.note(opened.id, text="looking", by="a")  # acknowledged at 00:05
    clock.advance(300)
    incidents.resolve(opened.id, by="a")  # resolved at 00:10
    clock.advance(600)  # now 00:20
    before = (incidents.store.get(opened.id), incidents.store.updates(opened.id), journal.read())
    with pytest.raises(InvalidInput) as refused:
        incidents.correct(opened.id, moment=moment, at=at, by="b", reason=reason)
    assert refused.value.field == field and says in refused.value.message, refused.value.message
    assert refused.value.message.count(". ") == 0 and "\n" not in refused.value.message  # one sentence
    assert (incidents.store.get(opened.id), incidents.store.updates(opened.id), journal.read()) == before


def test_the_resolution_of_an_open_incident_cannot_be_corrected_and_a_reopen_drops_its_correction(
    incidents: Incidents, clock: FakeClock
) -> None:
    opened = incidents.open(title="x", by="a")
    clock.advance(60)
    incidents.note(opened.id, text="looking", by="a")  # acknowledged at 00:01
    with pytest.raises(InvalidInput, match="is investigating, not resolved"):
        incidents.correct(opened.id, moment="resolved", at=clock.now(), by="a", reason="r")
    with pytest.raises(NotFound):
        incidents.correct(999, moment="detected", at=clock.now(), by="a", reason="r")
    clock.advance(60)
    incidents.resolve(opened.id, by="a")
    clock.advance(60)
    incidents.correct(opened.id, moment="resolved", at="2026-01-01 00:01:30", by="a", reason="fixed earlier")
    assert incidents.detail(opened.id)["moments"]["resolved"] == "2026-01-01T00:01:30Z"
    incidents.set_status(opened.id, status=Status.INVESTIGATING, by="a")  # a reopen
    assert incidents.detail(opened.id)["moments"]["resolved"] is None
    assert incidents.store.updates(opened.id)[-1].kind == "reopen"


def test_correcting_a_resolved_incident_s_moments_computes_its_impact_again(
    tmp_path: Path, clock: FakeClock
) -> None:
    recorded = record_incident(tmp_path, clock)  # 5xx from t0+5 to t0+7, rolled back at t0+8
    store = IncidentStore.for_data_dir(tmp_path, clock=clock)
    incidents = Incidents(store)
    resolved = incidents.resolve(recorded.incident_id, by="alice")
    assert resolved.impact is not None
    assert (resolved.impact["requests"], resolved.impact["failed_requests"]) == (400, 120)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    incidents.correct(recorded.incident_id, moment="mitigated", at=t0 + timedelta(seconds=6), by="bob",
                      reason="the canary's weight went to 0 here")  # fmt: skip
    kept = store.get(recorded.incident_id).impact
    assert kept is not None
    assert (kept["requests"], kept["failed_requests"], kept["bad_seconds"]) == (200, 80, 2)
    assert incidents.detail(recorded.incident_id)["impact"]["failed_requests"] == 80
    store.close()
