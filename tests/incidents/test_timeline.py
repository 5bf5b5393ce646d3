"""An incident's moments, derived from its events: first match wins, a person's correction wins over all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from steadylink.incidents.model import Incident, Status, Update
from steadylink.incidents.timeline import derive_moments
from steadylink.watch.journal import Event, Severity

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(seconds: float, kind: str) -> Event:
    return Event(1, T0 + timedelta(seconds=seconds), kind, "r1", Severity.INFO, kind, {})


def incident(**kwargs: object) -> Incident:
    return Incident(1, "t", 1, Status.INVESTIGATING, T0 + timedelta(seconds=3), "guard", **kwargs)  # type: ignore[arg-type]


def test_a_stalled_group_replaced_by_the_supervisor_is_the_mitigation() -> None:
    events = [
        event(0, "probe.failed"),
        event(2, "alert.firing"),
        event(4, "supervisor.restarted"),
        event(5, "probe.recovered"),
    ]
    moments = derive_moments(incident(), events, [])
    assert moments["first_bad_signal"] == T0
    assert moments["detected"] == T0 + timedelta(seconds=2)
    assert moments["mitigated"] == T0 + timedelta(seconds=4)
    assert moments["acknowledged"] is None


def test_a_rollback_mitigates_and_a_correction_wins() -> None:
    events = [event(0, "traffic.errors"), event(1, "release.rolled_back")]
    assert derive_moments(incident(), events, [])["mitigated"] == T0 + timedelta(seconds=1)
    corrected = incident(corrections={"mitigated": T0 + timedelta(seconds=9)})
    assert derive_moments(corrected, events, [])["mitigated"] == T0 + timedelta(seconds=9)


def test_without_events_the_opening_stands_for_the_first_signal_and_detection() -> None:
    moments = derive_moments(incident(), [], [])
    assert moments["first_bad_signal"] == moments["detected"] == T0 + timedelta(seconds=3)
    assert moments["mitigated"] is None


def test_an_incident_opened_by_hand_before_the_guard_saw_anything_starts_at_its_opening() -> None:
    # a person saw trouble at 3 s, opened the incident and wrote; the canary rolled back at 20 s
    events = [event(10, "traffic.errors"), Event(2, T0 + timedelta(seconds=20), "release.rolled_back", "r1",
                                                 Severity.ERROR, "rolled back", {"automatic": True})]  # fmt: skip
    note = Update(1, 1, T0 + timedelta(seconds=5), "note", "alice", "redirects look slow")
    moments = derive_moments(incident(), events, [note])
    assert moments["first_bad_signal"] == moments["detected"] == T0 + timedelta(seconds=3)
    assert moments["acknowledged"] == T0 + timedelta(seconds=5)  # after the detection, not before it
    assert moments["mitigated"] == T0 + timedelta(seconds=20)
