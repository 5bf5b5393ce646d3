"""The audit log: who did what to which release, append-only.

``<data_dir>/audit.log`` holds one JSON object per line. Lines are only ever
appended (``O_APPEND`` under an exclusive ``flock``, then fsync), never
rewritten, so the log can be shipped or tailed as it grows.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import cast

from steadylink.clock import Clock
from steadylink.errors import InvalidInput, StoreError
from steadylink.types import Role

AUDIT_FILE_NAME = "audit.log"


@dataclass(frozen=True)
class AuditEntry:
    """One action: ``actor`` (as ``role``) did ``action`` to ``target``, with ``outcome``."""

    at: datetime
    actor: str
    role: Role
    action: str
    target: str
    outcome: str
    detail: Mapping[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role.label,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "detail": dict(self.detail),
        }

    @classmethod
    def from_json(cls, body: dict[str, object]) -> AuditEntry:
        return cls(
            at=datetime.fromisoformat(str(body["at"])),
            actor=str(body["actor"]),
            role=Role.parse(str(body["role"])),
            action=str(body["action"]),
            target=str(body["target"]),
            outcome=str(body["outcome"]),
            detail=dict(cast(dict[str, object], body.get("detail", {}))),
        )


def record_action(
    data_dir: Path,
    *,
    actor: str,
    role: Role,
    action: str,
    target: str,
    outcome: str,
    clock: Clock,
    detail: Mapping[str, object] | None = None,
) -> AuditEntry:
    """Append one entry to the audit log and return it."""
    entry = AuditEntry(
        at=clock.now(),
        actor=actor,
        role=role,
        action=action,
        target=target,
        outcome=outcome,
        detail=dict(detail or {}),
    )
    line = (json.dumps(entry.to_json(), sort_keys=True, default=str) + "\n").encode()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / AUDIT_FILE_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def read_audit(data_dir: Path, *, action: str | None = None, limit: int | None = None) -> list[AuditEntry]:
    """Entries oldest first; only ``action`` ones if given; only the last ``limit`` if given."""
    path = data_dir / AUDIT_FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    # A crash mid-append can leave one unfinished last line; it was never acknowledged.
    complete = text.split("\n")[:-1]
    entries: list[AuditEntry] = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            entry = AuditEntry.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError, InvalidInput) as exc:
            raise StoreError(
                f"{path} line {number} is not an audit entry ({exc}); "
                "the log was edited by hand - restore it from a backup."
            ) from exc
        if action is None or entry.action == action:
            entries.append(entry)
    if limit is not None:
        entries = entries[-limit:] if limit > 0 else []
    return entries
