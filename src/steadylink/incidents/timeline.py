"""An incident's timeline and its moments, read from its journal events and what people added.

The moments that matter are derived, first match wins, and a person's
correction always wins over the derivation:

- first bad signal: the first failed probe, first 5xx seen at the front door,
  first pending or firing alert, failed release step, or rollback — or the
  opening of the incident, if that came first (a person who opens one by hand
  has seen trouble, even when the guard's signals join later);
- detected: the first firing alert, or the rollback that the canary or bake
  decided (the guard noticed), or the opening of the incident if earlier;
- acknowledged: the first acknowledged alert, or the first note or status a
  person wrote;
- mitigated: the rollback, the supervisor's restart of what failed (HAProxy,
  a worker group), or the first status ``monitoring``;
- resolved: when the incident was resolved.

A correction must keep the moments in an order that can have happened
(``check_correction``): nothing lies in the future; nothing comes before the
first bad signal or after the resolution; nobody acknowledges what was not
yet detected. Mitigation may come before detection (the supervisor healed
something before an alert fired), so those two are not ordered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from steadylink.errors import InvalidInput
from steadylink.incidents.model import MOMENT_NOUNS, MOMENTS, Incident, Status, Update, iso, said
from steadylink.watch.journal import Event

# (earlier, later): the pairs of moments whose order a correction must keep
ORDER = (
    *(("first_bad_signal", m) for m in MOMENTS[1:]),
    ("detected", "acknowledged"),
    *((m, "resolved") for m in MOMENTS[1:-1]),
)
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
        "first_bad_signal": min([*bad, incident.opened_at]),
        "detected": min([*detected, incident.opened_at]),
        "acknowledged": first(acked),
        "mitigated": first(mitigated),
        "resolved": incident.resolved_at,
    }
    moments.update(incident.corrections)
    return moments


def check_correction(
    moments: dict[str, datetime | None], moment: str, at: datetime, *, now: datetime
) -> None:
    """Raise ``InvalidInput`` (one sentence, field ``at``) if ``moment`` at ``at`` cannot have been.

    Only the pairs that hold ``moment`` are checked, against the moments as they
    stand (derived or corrected): a correction is judged by what it changes.
    Times are compared to the second, as they are shown and typed.
    """
    name = MOMENT_NOUNS[moment]
    if _second(at) > _second(now):
        raise InvalidInput(
            f"{name.capitalize()} cannot be in the future (it is {said(now)} now).", field="at"
        )
    for earlier, later in ORDER:
        if moment not in (earlier, later):
            continue
        other_name = later if moment == earlier else earlier
        other = moments.get(other_name)
        if other is None:
            continue
        if moment == later and _second(at) < _second(other):
            raise InvalidInput(
                f"{name.capitalize()} cannot be before {MOMENT_NOUNS[other_name]} ({said(other)}).",
                field="at",
            )
        if moment == earlier and _second(at) > _second(other):
            raise InvalidInput(
                f"{name.capitalize()} cannot be after {MOMENT_NOUNS[other_name]} ({said(other)}).", field="at"
            )


def _second(at: datetime) -> int:
    return int(at.timestamp() // 1)


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
