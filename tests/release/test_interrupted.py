"""Deploys the last guard died in the middle of: what the next guard records (no processes here;
tests/e2e/test_interrupted.py kills a real guard mid-canary)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from steadylink.release.guard import Guard
from steadylink.release.history import ReleaseRecord, StepRecord, Verdict, load_record, save_record
from steadylink.release.interrupted import CAUGHT_BY, end_interrupted_deploys
from steadylink.release.lock import acquire_lock
from steadylink.settings import Settings

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def record(release: str, verdict: Verdict, *steps: str) -> ReleaseRecord:
    done = [StepRecord(name, "passed", WHEN, 1.0) for name in steps]
    return ReleaseRecord(release, "main", "a" * 40, "v2", "dev", "alice", WHEN, steps=done, verdict=verdict)


@pytest.fixture
def guard(tmp_path: Path) -> Guard:
    g = Guard(Settings(data_dir=tmp_path / "data"))
    g.data_dir.mkdir(parents=True)
    return g


def test_unfinished_deploys_are_ended_and_finished_ones_left_alone(guard: Guard) -> None:
    first = record("20260101000000-aaaaaaa", "promoted", "build")  # the first release: no bake
    staged = record("20260101000100-bbbbbbb", "staged", "build", "stage")
    baking = record("20260101000200-ccccccc", "promoted", "build", "stage", "canary")
    done = record("20260101000300-ddddddd", "rejected", "build")
    for r in (first, staged, baking, done):
        save_record(guard.data_dir, r)
    guard.state.serving, guard.state.warm_previous = baking.id, first.id
    lines: list[str] = []
    ended = end_interrupted_deploys(guard, lines.append)
    assert sorted(r.id for r in ended) == [staged.id, baking.id]
    was_staged = load_record(guard.data_dir, staged.id)
    assert (was_staged.verdict, was_staged.caught_by) == ("rejected", CAUGHT_BY)
    assert was_staged.steps[-1].name == "interrupted" and "it no longer runs" in was_staged.steps[-1].output_tail
    was_baking = load_record(guard.data_dir, baking.id)
    assert was_baking.verdict == "promoted"  # it keeps serving
    assert (was_baking.steps[-1].name, was_baking.steps[-1].verdict) == ("bake", "skipped")
    assert f"{first.id} stays warm: `steadylink rollback` returns to it" in was_baking.steps[-1].output_tail
    assert load_record(guard.data_dir, first.id).steps == first.steps
    assert load_record(guard.data_dir, done.id).verdict == "rejected"
    assert len(lines) == 2
    # ended once: a later start finds nothing to end
    assert end_interrupted_deploys(guard, lines.append) == []


def test_a_deploy_that_runs_now_is_not_touched(guard: Guard) -> None:
    save_record(guard.data_dir, record("20260101000100-bbbbbbb", "canary", "build", "stage"))
    with acquire_lock(guard.data_dir, holder="alice", message="deploying", clock=guard.clock):
        assert end_interrupted_deploys(guard, print) == []
    assert load_record(guard.data_dir, "20260101000100-bbbbbbb").verdict == "canary"
