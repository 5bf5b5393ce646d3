"""An incident's timeline and its moments, read from its journal events and what people added.

The moments that matter are derived, first match wins, and a person's
correction always wins over the derivation:

- first bad signal: the first failed probe, first 5xx seen at the front door,
  first pending or firing alert, failed release step, or rollback;
- detected: the first firing alert, or the rollback that the canary or bake
  decided (the guard noticed), or the opening of the incident;
- acknowledged: the first acknowledged alert, or the first note or status a
  person wrote;
- mitigated: the rollback, the supervisor's restart of what failed (HAProxy,
  a worker group), or the first status ``monitoring``;
- resolved: when the incident was resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from steadylink.incidents.model import Incident, Status, Update, iso
from steadylink.watch.journal import Event

BAD_SIGNALS = ("probe.failed", "traffic.errors", "alert.pending", "alert.firing", "release.rolled_back")


@dataclass(frozen=True)
class Entry:
    at: datetime
    source: str  # "guard" or the person's key name
    kind: str
    text: str
    public_text: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "at": iso(self.at),
            "source": self.source,
            "kind": self.kind,
            "text": self.text,
            "public_text": self.public_text,
        }


def build_timeline(events: list[Event], updates: list[Update]) -> list[Entry]:
    entries = [Entry(e.at, "guard", e.kind, _describe(e)) for e in events]
    entries += [Entry(u.at, u.author, u.kind, u.text, u.public_text) for u in updates]
    return sorted(entries, key=lambda entry: entry.at)


def derive_moments(
    incident: Incident, events: list[Event], updates: list[Update]
) -> dict[str, datetime | None]:
    def first(times: list[datetime]) -> datetime | None:
        return min(times) if times else None

    bad = [e.at for e in events if _is_bad(e)]
    detected = [e.at for e in events if e.kind == "alert.firing" or _is_guard_rollback(e)]
    by_people = [u.at for u in updates if u.kind in ("note", "status") and u.author != "guard"]
    acked = [e.at for e in events if e.kind == "alert.acknowledged"] + by_people
    mitigated = [e.at for e in events if e.kind in ("release.rolled_back", "supervisor.restarted")]
    mitigated += [u.at for u in updates if u.status == Status.MONITORING]
    moments: dict[str, datetime | None] = {
        "first_bad_signal": first(bad) or incident.opened_at,
        "detected": first(detected) or incident.opened_at,
        "acknowledged": first(acked),
        "mitigated": first(mitigated),
        "resolved": incident.resolved_at,
    }
    moments.update(incident.corrections)
    return moments


def _is_bad(event: Event) -> bool:
    if event.kind in BAD_SIGNALS:
        return True
    return event.kind == "deploy.step" and event.body.get("verdict") == "failed"


def _is_guard_rollback(event: Event) -> bool:
    return event.kind == "release.rolled_back" and bool(event.body.get("automatic"))


def _describe(event: Event) -> str:
    """The event's message, said so that a reader of the timeline needs no key to the kinds."""
    if event.release and event.release not in event.message:
        return f"{event.message} ({event.release})"
    return event.message
