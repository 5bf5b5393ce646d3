"""Snapshot and stage: a candidate on a private socket against a copy of real data.

The snapshot is a verified backup of the links store taken before anything
changes. Staging runs on a copy of it: the candidate's migrations are applied
to the copy first, then the candidate and the release serving now are both
started against it, each on its own private socket, and the smoke suite runs
on both. The current release must still pass its own smoke suite on the
migrated copy (a migration that breaks the release still serving is caught
here), and a sample of real codes must resolve the same on both.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from steadylink.clock import Clock, SystemClock
from steadylink.links.backup import create_backup
from steadylink.links.service import create_key
from steadylink.links.sql_store import open_store
from steadylink.release.guard import Guard
from steadylink.release.history import StepRecord, StepVerdict
from steadylink.release.stage import StageReport, run_stage
from steadylink.release.workers import (
    WorkerSpec,
    migrate_with_release,
    start_workers,
    stop_workers,
    wait_until_healthy,
)
from steadylink.types import Role

Progress = Callable[[str], None]


@dataclass
class StageOutcome:
    is_passed: bool
    steps: list[StepRecord] = field(default_factory=list)


def stage_release(*, guard: Guard, release_id: str, python: Path, progress: Progress) -> StageOutcome:
    clock = guard.clock
    outcome = StageOutcome(is_passed=False)
    stage_dir = guard.data_dir / "releases" / release_id / "stage"
    stage_dir.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    snapshot = create_backup(
        settings=guard.settings, clock=clock, output=guard.data_dir / "backups" / f"before-{release_id}.db"
    ).backup
    outcome.steps.append(
        StepRecord(
            "snapshot",
            "passed",
            clock.now(),
            time.monotonic() - started,
            f"verified snapshot {snapshot.path}",
            {"links": snapshot.links, "bytes": snapshot.size},
        )
    )
    progress(f"snapshot: {snapshot.path.name} ({snapshot.links} links, verified)")

    stage_db = stage_dir / "links.db"
    stage_db.write_bytes(snapshot.path.read_bytes())
    database = f"sqlite:///{stage_db}"
    files = stage_dir / "files"
    if not files.exists() and guard.settings.files_dir.resolve().exists():
        files.symlink_to(guard.settings.files_dir.resolve())

    started = time.monotonic()
    ok, output = migrate_with_release(python, database=database, data_dir=stage_dir)
    verdict: StepVerdict = "passed" if ok else "failed"
    elapsed = time.monotonic() - started
    outcome.steps.append(StepRecord("stage-migrate", verdict, clock.now(), elapsed, output))
    if not ok:
        return outcome

    store = open_store(database)
    try:
        key = create_key(store=store, clock=SystemClock(), name=f"stage {release_id}", role=Role.ADMIN)
        sample = store.sample_codes(guard.settings.release.stage_sample)
    finally:
        store.close()

    current = guard.state.serving
    pids: list[int] = []
    try:
        started = time.monotonic()
        candidate_spec = guard.worker_spec(release_id, python, guard.run_dir / "stage-new.sock", database)
        candidate_spec = _in_dir(candidate_spec, stage_dir)
        pids.append(start_workers(candidate_spec))
        current_spec = None
        if current is not None:
            current_spec = _in_dir(
                guard.worker_spec(
                    current, Path(guard.state.pythons[current]), guard.run_dir / "stage-cur.sock", database
                ),
                stage_dir,
            )
            pids.append(start_workers(current_spec))
        try:
            wait_until_healthy(candidate_spec, pids[0], timeout=30)
            if current_spec is not None:
                wait_until_healthy(current_spec, pids[1], timeout=30)
        except Exception as exc:
            outcome.steps.append(
                StepRecord(
                    "stage-start",
                    "failed",
                    clock.now(),
                    time.monotonic() - started,
                    str(exc)[-2000:],
                )
            )
            return outcome
        progress(f"stage: {release_id} and {current} serving a copy of {len(sample)} sampled codes")
        with _client(candidate_spec.socket) as cand, _client_or_none(current_spec) as cur:
            report = run_stage(
                cand,
                cur,
                sample_codes=sample,
                api_key=key.secret,
                settings=guard.settings.release,
                progress=progress,
            )
            outcome.steps.append(_to_step("stage", report, clock))
            is_passed = report.passed
            if cur is not None:
                # The release serving now must survive the candidate's migrations.
                own = run_stage(
                    cur,
                    None,
                    sample_codes=[],
                    api_key=key.secret,
                    settings=guard.settings.release,
                    progress=progress,
                )
                outcome.steps.append(_to_step("stage-current-on-new-schema", own, clock))
                is_passed = is_passed and own.passed
        outcome.is_passed = is_passed
        return outcome
    finally:
        for pid in pids:
            stop_workers(pid)


def _in_dir(spec: WorkerSpec, stage_dir: Path) -> WorkerSpec:
    from dataclasses import replace

    return replace(spec, data_dir=stage_dir)


def _client(socket: Path) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://stage", timeout=10.0)


def _client_or_none(spec: WorkerSpec | None) -> contextlib.AbstractContextManager[httpx.Client | None]:
    return _client(spec.socket) if spec is not None else contextlib.nullcontext()


def _to_step(name: str, report: StageReport, clock: Clock) -> StepRecord:
    lines = [f"{'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in report.checks]
    figures: dict[str, float | int | str] = {}
    for check in report.checks:
        for key, value in (check.figures or {}).items():
            figures[f"{check.name}.{key}"] = value
    return StepRecord(
        name,
        "passed" if report.passed else "failed",
        clock.now(),
        sum(c.duration_s for c in report.checks),
        "\n".join(lines)[-3000:],
        figures,
    )
