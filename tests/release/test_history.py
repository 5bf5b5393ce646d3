import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from steadylink.errors import NotFound, StoreError
from steadylink.release import (
    ReleaseRecord,
    StepRecord,
    current_release,
    list_records,
    load_record,
    previous_good_release,
    save_record,
)
from steadylink.release.history import Verdict

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_record(n: int, verdict: Verdict = "promoted") -> ReleaseRecord:
    created_at = T0 + timedelta(minutes=n)
    return ReleaseRecord(
        id=f"{created_at:%Y%m%d%H%M%S}-abc{n:04d}",
        ref="main",
        sha=f"abc{n:04d}" + "0" * 33,
        subject=f"change {n}",
        author="Alice <alice@example.com>",
        created_by="alice",
        created_at=created_at,
        verdict=verdict,
    )


def test_record_round_trips_through_its_file(tmp_path: Path) -> None:
    record = make_record(1, "rejected")
    record.is_source_dirty = True
    record.caught_by = "tests"
    record.exit_code = 1
    record.steps = [
        StepRecord("install", "passed", T0, 2.5, "Installed 3 packages", {"packages": 3}),
        StepRecord("tests", "failed", T0, 0.75, "1 failed", {"note": "x"}),
        StepRecord("import", "skipped", T0, 0.0),
    ]
    path = save_record(tmp_path, record)
    assert path == tmp_path / "records" / f"{record.id}.json"
    assert load_record(tmp_path, record.id) == record
    assert json.loads(path.read_text())["caught_by"] == "tests"
    assert not list(path.parent.glob("*.tmp"))


def test_saving_again_replaces_the_record(tmp_path: Path) -> None:
    record = make_record(1, "building")
    save_record(tmp_path, record)
    record.verdict = "promoted"
    save_record(tmp_path, record)
    assert load_record(tmp_path, record.id).verdict == "promoted"
    assert len(list_records(tmp_path)) == 1


def test_list_is_newest_first(tmp_path: Path) -> None:
    for n in (2, 0, 1):
        save_record(tmp_path, make_record(n))
    assert [r.subject for r in list_records(tmp_path)] == ["change 2", "change 1", "change 0"]


def test_current_and_previous_good_skip_releases_that_never_served(tmp_path: Path) -> None:
    assert current_release(tmp_path) is None
    assert previous_good_release(tmp_path) is None
    save_record(tmp_path, make_record(0, "promoted"))
    save_record(tmp_path, make_record(1, "promoted"))
    save_record(tmp_path, make_record(2, "rejected"))
    save_record(tmp_path, make_record(3, "rolled_back"))
    current, previous = current_release(tmp_path), previous_good_release(tmp_path)
    assert current is not None and current.subject == "change 1"
    assert previous is not None and previous.subject == "change 0"


def test_unknown_and_malformed_ids_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="No release"):
        load_record(tmp_path, "20260101000000-abc1234")
    with pytest.raises(NotFound, match="is not a release id"):
        load_record(tmp_path, "../../etc/passwd")


def test_corrupt_record_is_a_store_error_naming_the_file(tmp_path: Path) -> None:
    record = make_record(1)
    path = save_record(tmp_path, record)
    path.write_text('{"id": "half a record"')
    with pytest.raises(StoreError, match=str(path)):
        load_record(tmp_path, record.id)
    body = record.to_json() | {"verdict": "exploded"}
    path.write_text(json.dumps(body))
    with pytest.raises(StoreError, match="unknown release verdict"):
        list_records(tmp_path)


def test_an_operator_rollback_is_written_into_the_release_s_record(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from steadylink.release.history import ReleaseRecord, load_record, mark_rolled_back, save_record

    when = datetime(2026, 1, 1, tzinfo=UTC)
    promoted = ReleaseRecord("20260101000100-aaaaaaa", "main", "a" * 40, "s", "a", "op", when, verdict="promoted")
    rejected = ReleaseRecord("20260101000200-bbbbbbb", "main", "b" * 40, "s", "a", "op", when, verdict="rejected")
    save_record(tmp_path, promoted)
    save_record(tmp_path, rejected)
    marked = mark_rolled_back(tmp_path, promoted.id, to="20260101000000-fffffff", by="alice", at=when)
    assert marked is not None
    again = load_record(tmp_path, promoted.id)
    assert (again.verdict, again.caught_by) == ("rolled_back", "operator rollback")
    assert again.steps[-1].name == "rollback"
    assert again.steps[-1].output_tail == "alice sent all traffic back to 20260101000000-fffffff"
    assert mark_rolled_back(tmp_path, rejected.id, to="x", by="alice", at=when) is None
    assert load_record(tmp_path, rejected.id).verdict == "rejected"
    assert mark_rolled_back(tmp_path, "20260101000300-ccccccc", to="x", by="alice", at=when) is None
