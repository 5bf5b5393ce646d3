"""``steadylink deploy REF``: the runbook from a git ref to a promoted release.

    acquire_lock → build → run_gates → snapshot → stage → canary → promote → bake

Each step is recorded (output, duration, verdict, figures) in the release
record; the first failing step names itself in ``caught_by``. Exit codes:
0 promoted, 3 rejected before any user traffic, 4 rolled back after reaching
users, 2 refused.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from steadylink.clock import Clock
from steadylink.errors import InvalidInput, ReleaseError, SteadylinkError
from steadylink.release.approvals import wait_for_approval
from steadylink.release.build import (
    BuildFailed,
    BuiltRelease,
    ResolvedRef,
    build_release,
    make_release_id,
    prune_releases,
    resolve_ref,
)
from steadylink.release.gates import GateContext, run_gates
from steadylink.release.guard import FULL_WEIGHT, REPLACE_TIMEOUT, Guard
from steadylink.release.history import ReleaseRecord, StepRecord, StepVerdict, Verdict, save_record
from steadylink.release.lock import acquire_lock
from steadylink.release.observe import run_bake, run_canary
from steadylink.release.staging import stage_release
from steadylink.release.workers import migrate_with_release
from steadylink.types import Role

APPROVAL_TIMEOUT = 3600.0
EXIT_PROMOTED, EXIT_REFUSED, EXIT_REJECTED, EXIT_ROLLED_BACK = 0, 2, 3, 4

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DeployRequest:
    ref: str
    source_dir: Path
    actor: str
    role: Role
    skip_canary: bool = False
    # stage comparisons the deployer expects to differ (a change of behaviour on purpose)
    expected_changes: tuple[str, ...] = ()


def failure_summary(output: str, *, tail: int = 12) -> list[str]:
    """What an operator needs from a failed step's output: the failing tests' names (pytest's
    ``FAILED``/``ERROR`` lines), then the last lines, without pytest's warnings summary."""
    kept: list[str] = []
    is_warnings = False
    for line in output.rstrip().splitlines():
        if line.startswith("=") and "warnings summary" in line:
            is_warnings = True
            continue
        if is_warnings:
            is_warnings = not line.startswith(("-- Docs:", "="))
            if is_warnings or line.startswith("-- Docs:"):
                continue
        if line.strip():
            kept.append(line)
    failing = [line for line in kept if line.startswith(("FAILED ", "ERROR "))]
    last = [line for line in kept if line not in failing][-tail:]
    return failing + last


class Deployment:
    """One run of the deploy runbook against a running guard."""

    def __init__(self, guard: Guard, *, clock: Clock, progress: Progress) -> None:
        self.guard = guard
        self.settings = guard.settings
        self.data_dir = guard.data_dir
        self.clock = clock
        self.progress = progress
        self.record: ReleaseRecord | None = None

    def run(self, request: DeployRequest) -> ReleaseRecord:
        resolved = resolve_ref(request.source_dir, request.ref)
        if resolved.is_source_dirty:
            raise InvalidInput(
                f"{request.source_dir} has uncommitted changes; commit or stash them first "
                "(a release is built from the commit, so they would silently not be in it).",
                field="source",
            )
        message = f"deploy {request.ref} ({resolved.short})"
        with acquire_lock(self.data_dir, holder=request.actor, message=message, clock=self.clock):
            return self._run_locked(request, resolved)

    def _run_locked(self, request: DeployRequest, resolved: ResolvedRef) -> ReleaseRecord:
        record = ReleaseRecord(
            id=make_release_id(resolved, self.clock.now()),
            ref=request.ref,
            sha=resolved.sha,
            subject=resolved.subject,
            author=resolved.author,
            created_by=request.actor,
            created_at=self.clock.now(),
            is_source_dirty=resolved.is_source_dirty,
        )
        self.record = record
        self._save()
        self.progress(f"release {record.id}: {resolved.short} {resolved.subject}")
        self._journal(
            "deploy.started", f"{request.actor} deploys {request.ref} ({resolved.short} {resolved.subject})",
            body={
                "ref": request.ref, "source": str(request.source_dir), "by": request.actor,
                "expected_changes": list(request.expected_changes),
            },
        )  # fmt: skip
        try:
            built = self._build(resolved)
            if built is None:
                return self._finish("rejected", EXIT_REJECTED)
            self.guard.register_release(record.id, built.venv_python)
            if not self._gate(built):
                return self._finish("rejected", EXIT_REJECTED)
            record.verdict = "gated"
            self._save()  # a guard that dies from here on is known to have died mid-stage
            if not self._stage(built.venv_python, request.expected_changes):
                return self._finish("rejected", EXIT_REJECTED)
            record.verdict = "staged"
            self._save()
            self._migrate_production(built.venv_python)
            return self._roll_out(request)
        except SteadylinkError as exc:
            self._step("error", "failed", 0.0, exc.message)
            if record.verdict in ("canary", "promoted"):
                return self._finish("rolled_back", EXIT_ROLLED_BACK)
            return self._finish("rejected", EXIT_REJECTED)

    # steps ---------------------------------------------------------------------

    def _build(self, resolved: ResolvedRef) -> BuiltRelease | None:
        assert self.record is not None
        self.progress("build: exporting the tree and installing it into a fresh venv")
        started = time.monotonic()
        try:
            built = build_release(
                resolved,
                releases_dir=self.data_dir / "releases",
                cache_dir=self.data_dir / "cache" / "uv",
                clock=self.clock,
                progress=self.progress,
                release_id=self.record.id,
                extras=self.settings.release.build_extras,
            )
        except BuildFailed as exc:
            self._step("build", "failed", time.monotonic() - started, exc.message)
            return None
        self._step("build", "passed", time.monotonic() - started, "")
        return built

    def _gate(self, built: BuiltRelease) -> bool:
        report = run_gates(
            GateContext.for_release(built, test_args=self.settings.release.test_args),
            names=self.settings.release.gates,
            clock=self.clock,
            progress=self.progress,
        )
        # run_gates has said each gate's verdict already; a failed one also gets its output here
        # run_gates has said each gate's verdict; the outcome shows a failed one's output
        self._add_steps(result.to_step_record() for result in report.results)
        return report.is_passed

    def _stage(self, python: Path, expected_changes: tuple[str, ...]) -> bool:
        assert self.record is not None
        started = time.monotonic()
        report = stage_release(
            guard=self.guard, release_id=self.record.id, python=python, progress=self.progress,
            expected_changes=expected_changes,
        )  # fmt: skip
        self._add_steps(report.steps)
        self.progress(
            f"stage: {'passed' if report.is_passed else 'FAILED'} in {time.monotonic() - started:.1f}s"
        )
        return report.is_passed

    def _migrate_production(self, python: Path) -> None:
        started = time.monotonic()
        ok, output = migrate_with_release(python, database=self.settings.database_url, data_dir=self.data_dir)
        self._step("migrate", "passed" if ok else "failed", time.monotonic() - started, output)
        if not ok:
            raise ReleaseError("The production migration failed and was rolled back.")

    def _roll_out(self, request: DeployRequest) -> ReleaseRecord:
        assert self.record is not None
        release = self.record.id
        stable_release = self.guard.state.serving
        stable_slot = self.guard.state.slot_of(stable_release) if stable_release else None
        if stable_slot is None:
            raise ReleaseError("No release is serving; start the guard with `steadylink up`.")
        if self.settings.release.require_approval:
            started = time.monotonic()
            approver = wait_for_approval(
                self.data_dir, release, timeout=APPROVAL_TIMEOUT, progress=self.progress
            )
            self._step("approval", "passed", time.monotonic() - started, f"approved by {approver}")
        slot = self.guard.launch(release, progress=self.progress, timeout=REPLACE_TIMEOUT)
        self.record.verdict = "canary"
        self._save()
        baseline_ratio, baseline_latency_ms = 0.0, None
        if request.skip_canary:
            self._step("canary", "skipped", 0.0, f"skipped by {request.actor} (--no-canary)")
        else:
            outcome = run_canary(
                guard=self.guard,
                stable_slot=stable_slot,
                candidate_slot=slot,
                clock=self.clock,
                progress=self.progress,
            )
            self._add_steps(outcome.steps)
            baseline_ratio, baseline_latency_ms = outcome.baseline_ratio, outcome.baseline_latency_ms
            if not outcome.is_passed:
                self.guard.retire(slot)
                self.progress(f"canary aborted: {outcome.reason}; all traffic back on {stable_release}")
                return self._finish("rolled_back", EXIT_ROLLED_BACK, caught_by="canary")
        self.guard.set_traffic({slot: FULL_WEIGHT, stable_slot: 0})
        self.guard.mark_serving(release, warm_previous=stable_release)
        self.record.verdict = "promoted"
        self._save()
        self.progress(f"promoted {release}; baking with {stable_release} kept warm")
        self._journal(
            "release.promoted", f"{release} takes all traffic; {stable_release} kept warm for the bake",
            body={"previous": stable_release},
        )  # fmt: skip
        bake = run_bake(
            guard=self.guard,
            slot=slot,
            baseline_ratio=baseline_ratio,
            baseline_latency_ms=baseline_latency_ms,
            clock=self.clock,
            progress=self.progress,
        )
        self._add_steps(bake.steps)
        with self.guard.lock:
            # An operator may have run `steadylink rollback` during the bake: then the
            # stable release serves again and must not be touched.
            is_overruled = self.guard.state.serving != release
            if not is_overruled and bake.is_passed:
                self.guard.mark_serving(release, warm_previous=None)
                # the stable release, and any other left beside it (a release an earlier bake,
                # cut short by a guard restart, kept warm): only the new one serves on
                for other in [n for n, e in self.guard.state.slots.items() if e.release != release]:
                    self.guard.retire(other)
        if is_overruled:
            self._step("bake", "failed", 0.0, f"rolled back by an operator to {self.guard.state.serving}")
            return self._finish("rolled_back", EXIT_ROLLED_BACK, caught_by="operator rollback")
        if not bake.is_passed:
            self.guard.rollback(stable_release, progress=self.progress)
            return self._finish("rolled_back", EXIT_ROLLED_BACK, caught_by="bake")
        prune_releases(
            self.data_dir / "releases",
            keep=self.settings.release.keep_releases,
            protected={release, *((stable_release and [stable_release]) or [])},
        )
        return self._finish("promoted", EXIT_PROMOTED)

    # records -------------------------------------------------------------------

    def _step(self, name: str, verdict: StepVerdict, duration: float, output: str) -> None:
        self._add_steps([StepRecord(name, verdict, self.clock.now(), duration, output[-2000:])])

    def _add_steps(self, steps: Iterable[StepRecord]) -> None:
        """Record steps (saved at once) and journal each as ``deploy.step``."""
        assert self.record is not None
        for step in steps:
            self.record.steps.append(step)
            lines = failure_summary(step.output_tail) if step.verdict == "failed" else []
            lines = lines or step.output_tail.strip().splitlines()
            self._journal(
                "deploy.step", f"{step.name} {step.verdict}" + (f": {lines[0]}" if lines else ""),
                severity="warning" if step.verdict == "failed" else "info",
                body={"step": step.name, "verdict": step.verdict, "seconds": round(step.duration_s, 3),
                      "detail": step.output_tail[-500:]},
            )  # fmt: skip
        self._save()

    def _journal(self, kind: str, message: str, *, severity: str = "info", body: dict[str, object]) -> None:
        journal = self.guard.journal
        if journal is not None:
            release = self.record.id if self.record is not None else None
            journal.append(kind, message, release=release, severity=severity, body=body)

    def _finish(self, verdict: Verdict, exit_code: int, *, caught_by: str | None = None) -> ReleaseRecord:
        record = self.record
        assert record is not None
        record.verdict = verdict
        record.exit_code = exit_code
        if caught_by is None and verdict != "promoted":
            failed = [s.name for s in record.steps if s.verdict == "failed"]
            caught_by = failed[0] if failed else None
        record.caught_by = caught_by
        self._save()
        if verdict != "promoted":
            shutil.rmtree(self.data_dir / "releases" / record.id / "stage", ignore_errors=True)
        self._journal_end(record)
        return record

    def _journal_end(self, record: ReleaseRecord) -> None:
        failed = next((s for s in record.steps if s.verdict == "failed"), None)
        reason = next(iter(failure_summary(failed.output_tail)), "") if failed else ""
        if record.verdict == "rejected":
            self._journal(
                "release.rejected", f"{record.id} rejected at {record.caught_by}: {reason}",
                severity="warning", body={"step": record.caught_by, "reason": reason},
            )  # fmt: skip
        elif record.verdict == "rolled_back" and record.caught_by != "operator rollback":
            # an operator's rollback was journalled by the guard, with who did it
            self._journal(
                "release.rolled_back", f"{record.id} rolled back by the {record.caught_by}: {reason}",
                severity="error",
                body={"automatic": True, "by": "guard", "reason": reason, "reached_users": True,
                      "step": record.caught_by},
            )  # fmt: skip

    def _save(self) -> None:
        if self.record is not None:
            save_record(self.data_dir, self.record)
