from pathlib import Path

import pytest

from steadylink.errors import NotFound, ReleaseError
from steadylink.release.guard import Guard, GuardState, SlotEntry, read_state
from steadylink.settings import Settings


def test_state_round_trips_through_json() -> None:
    state = GuardState(
        slots={0: SlotEntry("a", 11, "/py"), 2: SlotEntry("b", 12, "/py2")},
        weights={0: 95, 2: 5},
        serving="a",
        warm_previous=None,
        pythons={"a": "/py", "b": "/py2"},
        ops_port=8081,
        guard_pid=1,
    )
    assert GuardState.from_json(state.to_json()) == state
    assert state.slot_of("b") == 2 and state.slot_of("zzz") is None


def test_a_damaged_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "guard.json").write_text('{"slots": {"0": {"release": 1}}}')
    with pytest.raises(ReleaseError, match="damaged"):
        read_state(tmp_path)
    assert read_state(tmp_path / "elsewhere") is None


FIRST = "20260101000000-f1f1f1f"


def test_a_new_guard_knows_no_release_and_keeps_its_state(settings: Settings) -> None:
    guard = Guard(settings)
    assert guard.state.pythons == {} and guard.state.serving is None
    guard.register_release("20260101000000-abcdef1", Path("/nowhere/python"))
    again = Guard(settings)
    assert again.state.pythons["20260101000000-abcdef1"] == "/nowhere/python"
    assert again.status()["slots"] == []


def test_rollback_with_nothing_to_roll_back_to_changes_nothing(settings: Settings) -> None:
    guard = Guard(settings)
    guard.state.serving = FIRST
    with pytest.raises(NotFound, match="no earlier release"):
        guard.rollback()
    with pytest.raises(NotFound, match="not kept"):
        guard.rollback("20260101000000-abcdef1")
    assert guard.state.serving == FIRST


def test_start_refuses_to_serve_anything_but_a_built_release(settings: Settings) -> None:
    guard = Guard(settings)
    with pytest.raises(ReleaseError, match="No built release"):
        guard.start(progress=lambda line: None)
    guard.state.serving = FIRST
    guard.register_release(FIRST, Path("/nowhere/python"))
    with pytest.raises(ReleaseError, match="No built release"):
        guard.start(progress=lambda line: None)


def test_traffic_changes_need_a_running_haproxy(settings: Settings) -> None:
    with pytest.raises(ReleaseError, match="steadylink up"):
        Guard(settings).set_traffic({0: 100})


def test_rollback_goes_to_the_newest_promoted_release_older_than_the_serving_one(settings: Settings) -> None:
    from datetime import UTC, datetime

    from steadylink.release.history import ReleaseRecord, save_record

    def record(rid: str, verdict: str, minute: int) -> None:
        when = datetime(2026, 1, 1, 0, minute, tzinfo=UTC)
        save_record(settings.data_dir.resolve(), ReleaseRecord(
            rid, "main", "0" * 40, "s", "a", "op", when, verdict=verdict))  # type: ignore[arg-type]  # fmt: skip

    guard = Guard(settings)
    record("20260101000000-f1f1f1f", "promoted", 0)  # the first release `up` built
    guard.state.serving = FIRST
    assert guard._previous_good() is None
    record("20260101000100-aaaaaaa", "promoted", 1)
    record("20260101000200-bbbbbbb", "rejected", 2)
    record("20260101000300-ccccccc", "promoted", 3)
    guard.state.serving = "20260101000300-ccccccc"
    assert guard._previous_good() == "20260101000100-aaaaaaa"
    guard.state.serving = "20260101000100-aaaaaaa"
    assert guard._previous_good() == FIRST
    guard.state.serving = "20260101000200-bbbbbbb"  # restored by hand to a release never promoted
    assert guard._previous_good() is None


def test_a_disk_that_refuses_the_state_file_never_stops_the_guard(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed save once cut `launch` short and leaked a slot per restart on a full disk."""
    guard = Guard(settings)
    blocker = guard.run_dir / "guard.tmp"
    blocker.mkdir(parents=True)  # every write of the state file now fails, as on a full disk
    guard.record_ops_port(8181)  # no exception
    assert guard.unsaved and guard.state.ops_port == 8181
    assert "the state is kept in memory" in capsys.readouterr().err
    guard.save_if_unsaved()
    assert guard.unsaved  # still refused: nothing said twice
    assert capsys.readouterr().err == ""
    blocker.rmdir()
    guard.save_if_unsaved()
    assert not guard.unsaved
    state = read_state(settings.data_dir)
    assert state is not None and state.ops_port == 8181
