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
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.exc import SQLAlchemyError

from steadylink.clock import Clock, SystemClock
from steadylink.edge.process import command_line
from steadylink.errors import ReleaseError, StoreError
from steadylink.links.migrate import current_revision
from steadylink.links.service import create_key
from steadylink.links.sql_store import open_store
from steadylink.release.guard import Guard
from steadylink.release.history import StepRecord, StepVerdict
from steadylink.release.schema_change import applied_migrations, breaks_current
from steadylink.release.stage import (
    STAGE_CHECKS,
    StageCheckRegistry,
    StageReport,
    run_stage,
)
from steadylink.release.stage_fixtures import add_stage_fixtures, locations_before
from steadylink.release.stage_power import differential_sample_size
from steadylink.release.workers import (
    WorkerSpec,
    is_alive,
    migrate_with_release,
    probe_socket,
    read_log_tail,
    start_workers,
    stop_workers,
)
from steadylink.types import Role
from steadylink.uds import uds_transport
from steadylink.watch.backups import recorded_backup

Progress = Callable[[str], None]
CURRENT_ON_NEW_SCHEMA = "stage-current-on-new-schema"
# A release on a 2-core machine under a deploy's builds and full load has taken
# over 30 s to answer; one that exits is seen at once, whatever this says.
STAGE_START_TIMEOUT = 120.0
# The stage's private sockets (candidate, current), and its note of the groups it runs.
STAGE_SOCKETS = ("stage-new.sock", "stage-cur.sock")
STAGE_GROUPS = "stage-groups.json"
# The current release's own pass: the comparisons with it are already done in the first pass.
OWN_CHECKS = StageCheckRegistry(
    c for c in STAGE_CHECKS if c.name not in ("differential", "data", "writes", "latency")
)


@dataclass
class StageOutcome:
    is_passed: bool
    steps: list[StepRecord] = field(default_factory=list)


def stage_release(
    *, guard: Guard, release_id: str, python: Path, progress: Progress, expected_changes: Sequence[str] = ()
) -> StageOutcome:
    clock = guard.clock
    outcome = StageOutcome(is_passed=False)
    stage_dir = guard.data_dir / "releases" / release_id / "stage"
    stage_dir.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    snapshot = recorded_backup(
        settings=guard.settings, clock=clock, journal=guard.journal, purpose=f"snapshot before {release_id}",
        output=guard.data_dir / "backups" / f"before-{release_id}.db",
    ).report.backup  # fmt: skip
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

    # The key and the sample come from the copy *before* the candidate migrates it: this
    # guard's code reads the schema it knows, which a contracting migration may change.
    store = open_store(database)
    try:
        key = create_key(store=store, clock=SystemClock(), name=f"stage {release_id}", role=Role.ADMIN)
        sample = store.sample_codes(differential_sample_size(guard.settings.release))
        try:
            before = locations_before(store, sample)
            fixtures = add_stage_fixtures(store, guard.settings, SystemClock())
        except (StoreError, SQLAlchemyError, ValueError, RuntimeError, KeyError) as exc:
            # the guard's code reads and writes the schema it knows, and production's may be another
            before, fixtures = {}, {}
            why = exc.message if isinstance(exc, StoreError) else type(exc).__name__
            progress(f"stage: the guard could not read or plant links in the copy ({why}); data and "
                     "lifecycle check what they can without them")  # fmt: skip
    finally:
        store.close()

    started = time.monotonic()
    ok, output = migrate_with_release(python, database=database, data_dir=stage_dir)
    migrations = applied_migrations(python, snapshot.revision, _revision_of(database))
    if ok:
        output = f"applied {', '.join(migrations) or 'no migration'}\n{output}"
    verdict: StepVerdict = "passed" if ok else "failed"
    elapsed = time.monotonic() - started
    outcome.steps.append(StepRecord("stage-migrate", verdict, clock.now(), elapsed, output))
    if not ok:
        return outcome

    current = guard.state.serving
    pids: list[int] = []
    try:
        started = time.monotonic()
        candidate_spec = guard.worker_spec(release_id, python, guard.run_dir / STAGE_SOCKETS[0], database)
        candidate_spec = _in_dir(candidate_spec, stage_dir)
        candidate_spec.log_file.unlink(missing_ok=True)  # its tail must be this start's
        pids.append(start_workers(candidate_spec))
        note_stage_groups(guard.run_dir, pids)
        current_spec = None
        if current is not None:
            current_spec = _in_dir(
                guard.worker_spec(
                    current, Path(guard.state.pythons[current]), guard.run_dir / STAGE_SOCKETS[1], database
                ),
                stage_dir,
            )
            current_spec.log_file.unlink(missing_ok=True)
            pids.append(start_workers(current_spec))
            note_stage_groups(guard.run_dir, pids)
        specs = [("candidate", candidate_spec, pids[0])]
        if current_spec is not None:
            specs.append(("current", current_spec, pids[1]))
        failure = wait_all_ready(specs)
        if failure is not None:
            role, error = failure
            elapsed = time.monotonic() - started
            if role == "current" and "exited while starting" in error.message:
                # only the candidate's schema changed under it: the migration broke it
                detail = breaks_current(migrations, current or "", error.message)
                name = CURRENT_ON_NEW_SCHEMA
            else:
                detail, name = error.message, "stage-start"
            progress(f"stage: {detail.splitlines()[0]}")
            outcome.steps.append(StepRecord(name, "failed", clock.now(), elapsed, detail[-2000:]))
            return outcome
        progress(f"stage: {release_id} and {current} serving a copy with {len(sample)} sampled codes")
        with _client(candidate_spec.socket) as cand, _client_or_none(current_spec) as cur:
            links = guard.settings.links
            report = run_stage(
                cand,
                cur,
                sample_codes=sample,
                api_key=key.secret,
                settings=guard.settings.release,
                progress=progress,
                fold_seconds=links.click_flush_seconds + links.compact_seconds,
                expected=fixtures,
                expected_changes=expected_changes,
                redirect_status=links.redirect_status,
                before_migration=before,
            )
            outcome.steps.append(_to_step("stage", report, clock))
            is_passed = report.passed
            if cur is not None:
                # The release serving now must survive the candidate's migrations. Its answers to
                # the sample on the migrated copy were already the differential's reference.
                own = run_stage(
                    cur, None, sample_codes=[], api_key=key.secret, settings=guard.settings.release,
                    progress=lambda line: None, checks=OWN_CHECKS, expected=fixtures,
                    redirect_status=links.redirect_status,
                    fold_seconds=links.click_flush_seconds + links.compact_seconds,
                )  # fmt: skip
                step = _to_step(CURRENT_ON_NEW_SCHEMA, own, clock)
                done = ", ".join(c.name for c in own.checks)
                migrated = f"after {', '.join(migrations)}" if migrations else "(no migration)"
                if own.passed:
                    step.output_tail = (
                        f"{current} on the migrated copy {migrated}: {done} passed; its answers to "
                        f"the sample were the differential's reference\n{step.output_tail}"
                    )
                else:
                    step.output_tail = (
                        f"{breaks_current(migrations, current or '', '')}\n{step.output_tail}"
                    )
                progress(f"stage: {step.output_tail.splitlines()[0]}")
                outcome.steps.append(step)
                is_passed = is_passed and own.passed
        outcome.is_passed = is_passed
        return outcome
    finally:
        for pid in pids:
            stop_workers(pid)
        (guard.run_dir / STAGE_GROUPS).unlink(missing_ok=True)


def note_stage_groups(run_dir: Path, pids: list[int]) -> None:
    """Write down the stage's worker groups: a guard that dies mid-stage leaves them running, in
    sessions of their own, and the next guard stops them from this note."""
    note = run_dir / STAGE_GROUPS
    draft = note.with_suffix(".tmp")
    draft.write_text(json.dumps(pids))
    draft.replace(note)


def stop_left_stage_groups(run_dir: Path, progress: Progress) -> list[int]:
    """Stop the stage groups an earlier guard noted and left; the leaders' pids stopped.

    A pid is only signalled while it still runs a stage group (its command line names one of
    the stage's sockets), so a pid reused since is never touched.
    """
    note = run_dir / STAGE_GROUPS
    try:
        pids = [int(pid) for pid in json.loads(note.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    stopped = []
    for pid in pids:
        command = (command_line(pid) or b"").decode(errors="replace")
        sockets = [run_dir / name for name in STAGE_SOCKETS]
        if any(str(path) in command or str(path.resolve()) in command for path in sockets):
            progress(f"stopping a stage's workers (pid {pid}) left by a guard that stopped mid-deploy")
            stop_workers(pid)
            stopped.append(pid)
    note.unlink(missing_ok=True)
    return stopped


def _revision_of(database: str) -> str | None:
    store = open_store(database)
    try:
        return current_revision(store.engine)
    except StoreError:
        return None
    finally:
        store.close()


def wait_all_ready(
    groups: list[tuple[str, WorkerSpec, int]], *, timeout: float = STAGE_START_TIMEOUT
) -> tuple[str, ReleaseError] | None:
    """Wait until every group answers ``/readyz``; the first that exits ends the wait at once
    (the current release refusing the migrated copy exits in a second, whatever the other does)."""
    pending = list(groups)
    deadline = time.monotonic() + timeout
    while pending:
        for group in list(pending):
            role, spec, pid = group
            if not is_alive(pid):
                tail = read_log_tail(spec)
                return role, ReleaseError(f"Release {spec.release_id} exited while starting:\n{tail}")
            if probe_socket(spec.socket, "/readyz") == 200:
                pending.remove(group)
        if pending and time.monotonic() > deadline:
            role, spec, _ = pending[0]
            return role, ReleaseError(
                f"Release {spec.release_id} ({role}) did not become ready within {timeout:g}s on the "
                f"staging copy; if the machine is busy, deploy again:\n{read_log_tail(spec)}"
            )
        if pending:
            time.sleep(0.1)
    return None


def _in_dir(spec: WorkerSpec, stage_dir: Path) -> WorkerSpec:
    from dataclasses import replace

    return replace(spec, data_dir=stage_dir)


def _client(socket: Path) -> httpx.Client:
    return httpx.Client(transport=uds_transport(socket), base_url="http://stage", timeout=10.0)


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
