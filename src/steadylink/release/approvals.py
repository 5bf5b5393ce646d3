"""Two-person rule: where ``release.require_approval`` is on, a second identity
approves a release before it reaches users."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from steadylink.clock import Clock
from steadylink.errors import Forbidden, ReleaseError
from steadylink.release.history import load_record

APPROVALS_DIR = "approvals"


def approve_release(
    data_dir: Path, release_id: str, *, approver: str, clock: Clock, approver_key: str | None = None
) -> dict[str, object]:
    record = load_record(data_dir, release_id)
    if record.created_by == approver:
        raise Forbidden("A release must be approved by someone other than who deployed it.")
    body: dict[str, object] = {
        "release": release_id,
        "approver": approver,
        "approver_key": approver_key,
        "at": clock.now().isoformat(),
    }
    path = data_dir / APPROVALS_DIR / f"{release_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, path)
    return body


def read_approval(data_dir: Path, release_id: str) -> dict[str, object] | None:
    try:
        body = json.loads((data_dir / APPROVALS_DIR / f"{release_id}.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def wait_for_approval(data_dir: Path, release_id: str, *, timeout: float, progress: object) -> str:
    """Block until someone approves; ReleaseError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    said = False
    while time.monotonic() < deadline:
        approval = read_approval(data_dir, release_id)
        if approval is not None:
            return str(approval["approver"])
        if not said:
            progress(f"waiting for approval: run `steadylink approve {release_id}` as another person")  # type: ignore[operator]
            said = True
        time.sleep(0.5)
    raise ReleaseError(f"Release {release_id} was not approved within {timeout:g}s.")
