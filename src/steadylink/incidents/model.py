"""What an incident is: severity, status and the transitions between statuses.

Statuses move forward (investigating → identified → monitoring → resolved);
a step may be skipped, never taken back, except that a resolved incident can
be reopened, which is recorded as such. The rules live here, free of storage,
so they are tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from steadylink.clock import utc
from steadylink.errors import InvalidInput

TITLE_MAX = 200
TEXT_MAX = 10_000
MOMENTS = ("first_bad_signal", "detected", "acknowledged", "mitigated", "resolved")
# how a sentence names each moment ("The detection cannot be before the first bad signal")
MOMENT_NOUNS = {
    "first_bad_signal": "the first bad signal",
    "detected": "the detection",
    "acknowledged": "the acknowledgement",
    "mitigated": "the mitigation",
    "resolved": "the resolution",
}
ACTION_STATES = ("open", "doing", "done", "wont_do")


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def rank(self) -> int:
        return list(Status).index(self)


@dataclass(frozen=True)
class Transition:
    to: Status
    is_reopen: bool = False


def parse_status(value: str) -> Status:
    try:
        return Status(value.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in Status)
        raise InvalidInput(f"Status {quoted(value)} is not one of {names}.", field="status") from None


def plan_transition(current: Status, wanted: Status) -> Transition:
    """Whether ``current`` may become ``wanted``; raise ``InvalidInput`` saying why not.

    Forward moves may skip steps; the same status again is refused (it would
    say nothing); going back is refused, except out of ``resolved``: that is a
    reopen, and the caller records it as one.
    """
    if wanted == current:
        raise InvalidInput(f"The incident is already {current.value}.", field="status")
    if current == Status.RESOLVED:
        return Transition(wanted, is_reopen=True)
    if wanted.rank < current.rank:
        raise InvalidInput(
            f"An incident that is {current.value} cannot go back to {wanted.value}; "
            "add a note to say what changed.",
            field="status",
        )
    return Transition(wanted)


def parse_severity(value: str | int) -> int:
    text = str(value).strip().upper().removeprefix("SEV")
    if text in ("1", "2", "3"):
        return int(text)
    raise InvalidInput(f"Severity {quoted(str(value))} must be SEV1, SEV2 or SEV3.", field="severity")


def parse_moment(value: str) -> str:
    """``first_bad_signal`` from itself or from ``first bad signal`` as it reads on a page."""
    name = "_".join(value.strip().lower().replace("-", " ").split())
    if name not in MOMENTS:
        names = ", ".join(MOMENTS)
        raise InvalidInput(f"Moment {quoted(value)} is not one of {names}.", field="moment")
    return name


def parse_time(value: str, *, field_name: str = "at") -> datetime:
    """A moment as a person types it: ISO 8601, ``T`` or a space, seconds optional; no zone means UTC."""
    text = value.strip()
    if not text:
        raise InvalidInput("Give the time in UTC, like 2026-01-01 12:00:00.", field=field_name)
    try:
        return utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{quoted(text)} is not a time; give it in UTC, like 2026-01-01 12:00:00.", field=field_name
        ) from None


def said(at: datetime) -> str:
    """A moment as the timeline says it: ``2026-01-01 12:00:00 UTC``."""
    return f"{utc(at):%Y-%m-%d %H:%M:%S} UTC"


def quoted(value: str, limit: int = 40) -> str:
    """What someone typed, quoted for an error message and cut short: a message stays one line."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def clean_title(value: str) -> str:
    title = " ".join(value.split())
    if not title:
        raise InvalidInput("An incident needs a title.", field="title")
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"A title is at most {TITLE_MAX} characters.", field="title")
    return title


def clean_text(value: str, *, field_name: str = "text") -> str:
    text = value.strip()
    if not text:
        raise InvalidInput(f"The {field_name} is empty.", field=field_name)
    if len(text) > TEXT_MAX:
        raise InvalidInput(
            f"The {field_name} is {len(text):,} characters, more than the {TEXT_MAX:,} kept;"
            " link to a longer document instead.",
            field=field_name,
        )
    return text


@dataclass
class Action:
    """A corrective action: what, who owns it, and where it stands."""

    what: str
    owner: str = ""
    state: str = "open"

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "owner": self.owner, "state": self.state}


@dataclass
class Incident:
    id: int
    title: str
    severity: int
    status: Status
    opened_at: datetime
    opened_by: str
    resolved_at: datetime | None = None
    releases: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    corrections: dict[str, datetime] = field(default_factory=dict)
    root_cause: str = ""
    whys: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    public_title: str = ""
    impact: dict[str, Any] | None = None  # kept at resolution: per-second figures are pruned later

    @property
    def is_open(self) -> bool:
        return self.status != Status.RESOLVED

    @property
    def label(self) -> str:
        return f"SEV{self.severity}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.label,
            "status": self.status.value,
            "opened_at": iso(self.opened_at),
            "opened_by": self.opened_by,
            "resolved_at": iso(self.resolved_at) if self.resolved_at else None,
            "releases": list(self.releases),
            "alerts": list(self.alerts),
            "corrections": {k: iso(v) for k, v in self.corrections.items()},
            "root_cause": self.root_cause,
            "whys": list(self.whys),
            "actions": [a.to_json() for a in self.actions],
            "public_title": self.public_title,
            "impact": self.impact,
        }


@dataclass(frozen=True)
class Update:
    """One line a person (or the guard) added: a note, a status change, a reopen."""

    id: int
    incident_id: int
    at: datetime
    kind: str  # note | status | reopen | correction | opened
    author: str
    text: str
    status: Status | None = None
    public_text: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso(self.at),
            "kind": self.kind,
            "author": self.author,
            "text": self.text,
            "status": self.status.value if self.status else None,
            "public_text": self.public_text,
        }


def iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")
