"""Release records: one JSON file per release under ``<data_dir>/records/``.

A record says who released what, every step it went through with its output
and figures, and how it ended. Files are written whole (temp file, fsync,
``os.replace``) so a crash never leaves half a record. The serving release is
the newest one whose verdict is ``promoted``; a rolled-back release stops
being promoted, so the one before it serves again.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, cast, get_args

from steadylink.errors import NotFound, StoreError

RECORDS_DIR_NAME = "records"

Verdict = Literal["building", "gated", "staged", "canary", "promoted", "rejected", "rolled_back", "refused"]
StepVerdict = Literal["passed", "failed", "skipped"]
Figure = float | int | str

RELEASE_ID_PATTERN = re.compile(r"^\d{14}-[0-9a-f]{4,40}$")


@dataclass
class StepRecord:
    """One step of a release (a build step, a gate, staging, a canary step)."""

    name: str
    verdict: StepVerdict
    started_at: datetime
    duration_s: float
    output_tail: str = ""
    figures: dict[str, Figure] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "output_tail": self.output_tail,
            "figures": dict(self.figures),
        }

    @classmethod
    def from_json(cls, body: dict[str, object]) -> StepRecord:
        return cls(
            name=str(body["name"]),
            verdict=_step_verdict(body["verdict"]),
            started_at=datetime.fromisoformat(str(body["started_at"])),
            duration_s=float(cast(float, body["duration_s"])),
            output_tail=str(body.get("output_tail", "")),
            figures=dict(cast(dict[str, Figure], body.get("figures", {}))),
        )


@dataclass
class ReleaseRecord:
    """Everything known about one release, from ``deploy REF`` to its outcome."""

    id: str
    ref: str
    sha: str
    subject: str
    author: str
    created_by: str
    created_at: datetime
    is_source_dirty: bool = False
    steps: list[StepRecord] = field(default_factory=list)
    verdict: Verdict = "building"
    caught_by: str | None = None
    exit_code: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "ref": self.ref,
            "sha": self.sha,
            "subject": self.subject,
            "author": self.author,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "is_source_dirty": self.is_source_dirty,
            "steps": [step.to_json() for step in self.steps],
            "verdict": self.verdict,
            "caught_by": self.caught_by,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_json(cls, body: dict[str, object]) -> ReleaseRecord:
        steps = cast(list[dict[str, object]], body.get("steps", []))
        caught_by = body.get("caught_by")
        exit_code = body.get("exit_code")
        return cls(
            id=str(body["id"]),
            ref=str(body["ref"]),
            sha=str(body["sha"]),
            subject=str(body["subject"]),
            author=str(body["author"]),
            created_by=str(body["created_by"]),
            created_at=datetime.fromisoformat(str(body["created_at"])),
            is_source_dirty=bool(body.get("is_source_dirty", False)),
            steps=[StepRecord.from_json(step) for step in steps],
            verdict=_verdict(body["verdict"]),
            caught_by=None if caught_by is None else str(caught_by),
            exit_code=None if exit_code is None else int(cast(int, exit_code)),
        )


def save_record(data_dir: Path, record: ReleaseRecord) -> Path:
    """Write the record whole, replacing any earlier version of it."""
    path = _record_path(data_dir, record.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{record.id}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_record(data_dir: Path, release_id: str) -> ReleaseRecord:
    """The record of one release, or ``NotFound``."""
    path = _record_path(data_dir, release_id)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"No release {release_id!r}; `steadylink releases` lists the known ones.") from None
    return _parse(path, text)


def list_records(data_dir: Path) -> list[ReleaseRecord]:
    """Every release record, newest first."""
    folder = data_dir / RECORDS_DIR_NAME
    if not folder.is_dir():
        return []
    records = [_parse(path, path.read_text(encoding="utf-8")) for path in folder.glob("*.json")]
    return sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)


def current_release(data_dir: Path) -> ReleaseRecord | None:
    """The release that serves traffic: the newest promoted one."""
    promoted = _promoted(data_dir)
    return promoted[0] if promoted else None


def previous_good_release(data_dir: Path) -> ReleaseRecord | None:
    """The promoted release before the current one: where a rollback goes."""
    promoted = _promoted(data_dir)
    return promoted[1] if len(promoted) > 1 else None


def mark_rolled_back(
    data_dir: Path, release_id: str, *, to: str, by: str, at: datetime
) -> ReleaseRecord | None:
    """Write into ``release_id``'s record that ``by`` rolled it back to ``to`` (history as it
    happened: a promoted release that was rolled back no longer reads promoted). Returns the
    record, or None when there is none or it was not promoted (a deploy records its own end)."""
    try:
        record = load_record(data_dir, release_id)
    except NotFound:
        return None
    if record.verdict != "promoted":
        return None
    record.verdict = "rolled_back"
    record.caught_by = "operator rollback"
    record.steps.append(StepRecord("rollback", "failed", at, 0.0, f"{by} sent all traffic back to {to}"))
    save_record(data_dir, record)
    return record


def _promoted(data_dir: Path) -> list[ReleaseRecord]:
    return [r for r in list_records(data_dir) if r.verdict == "promoted"]


def _record_path(data_dir: Path, release_id: str) -> Path:
    # The id becomes a file name: refuse anything that could step outside the folder.
    if not RELEASE_ID_PATTERN.match(release_id):
        raise NotFound(f"{release_id!r} is not a release id (they look like 20260101120000-abc1234).")
    return data_dir / RECORDS_DIR_NAME / f"{release_id}.json"


def _parse(path: Path, text: str) -> ReleaseRecord:
    try:
        body = json.loads(text)
        return ReleaseRecord.from_json(body)
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"Release record {path} is unreadable ({exc}); restore it or move it away.") from exc


def _verdict(value: object) -> Verdict:
    if value not in get_args(Verdict):
        raise ValueError(f"unknown release verdict {value!r}")
    return cast(Verdict, value)


def _step_verdict(value: object) -> StepVerdict:
    if value not in get_args(StepVerdict):
        raise ValueError(f"unknown step verdict {value!r}")
    return cast(StepVerdict, value)
