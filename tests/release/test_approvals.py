from datetime import UTC, datetime
from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import Forbidden, NotFound, ReleaseError
from steadylink.release.approvals import approve_release, read_approval, wait_for_approval
from steadylink.release.history import ReleaseRecord, save_record

RELEASE = "20260101000000-abcdef1"


def record(tmp_path: Path) -> None:
    save_record(
        tmp_path,
        ReleaseRecord(RELEASE, "main", "abcdef1" * 5, "v2", "dev", "alice", datetime(2026, 1, 1, tzinfo=UTC)),
    )


def test_a_second_person_approves(tmp_path: Path) -> None:
    record(tmp_path)
    with pytest.raises(Forbidden, match="someone other"):
        approve_release(tmp_path, RELEASE, approver="alice", clock=FakeClock())
    assert read_approval(tmp_path, RELEASE) is None
    approve_release(tmp_path, RELEASE, approver="bob", clock=FakeClock())
    assert wait_for_approval(tmp_path, RELEASE, timeout=1, progress=print) == "bob"


def test_unknown_releases_and_timeouts(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        approve_release(tmp_path, RELEASE, approver="bob", clock=FakeClock())
    lines: list[str] = []
    with pytest.raises(ReleaseError, match="not approved"):
        wait_for_approval(tmp_path, RELEASE, timeout=0.01, progress=lines.append)
