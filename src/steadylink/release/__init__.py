"""Releases: a git ref becomes a built, gated, recorded release.

The public API, in runbook order. Modules are private to the package; add a
new step's names here (and to ``__all__``) when its module lands.
"""

from steadylink.release.audit import AuditEntry, read_audit, record_action
from steadylink.release.bake import Baked, BakePolicy, BakeWatch, Baking, RollBack
from steadylink.release.build import (
    BuildFailed,
    BuiltRelease,
    ResolvedRef,
    Step,
    StepRun,
    build_release,
    make_release_id,
    plan_build,
    prune_releases,
    resolve_ref,
    run_step,
)
from steadylink.release.canary import (
    Abort,
    Advance,
    CanaryAnalysis,
    CanaryPolicy,
    Hold,
    Promote,
    Sample,
    ServerFigures,
    Weights,
)
from steadylink.release.gates import (
    GATES,
    Gate,
    GateContext,
    GateRegistry,
    GateReport,
    GateResult,
    run_gates,
)
from steadylink.release.history import (
    ReleaseRecord,
    StepRecord,
    current_release,
    list_records,
    load_record,
    previous_good_release,
    save_record,
)
from steadylink.release.lock import DeployLock, LockNote, acquire_lock, read_lock_holder
from steadylink.release.stage import STAGE_CHECKS, CheckResult, StageReport, run_stage

__all__ = [
    "GATES",
    "STAGE_CHECKS",
    "Abort",
    "Advance",
    "AuditEntry",
    "BakePolicy",
    "BakeWatch",
    "Baked",
    "Baking",
    "BuildFailed",
    "BuiltRelease",
    "CanaryAnalysis",
    "CanaryPolicy",
    "CheckResult",
    "DeployLock",
    "Gate",
    "GateContext",
    "GateRegistry",
    "GateReport",
    "GateResult",
    "Hold",
    "LockNote",
    "Promote",
    "ReleaseRecord",
    "ResolvedRef",
    "RollBack",
    "Sample",
    "ServerFigures",
    "StageReport",
    "Step",
    "StepRecord",
    "StepRun",
    "Weights",
    "acquire_lock",
    "build_release",
    "current_release",
    "list_records",
    "load_record",
    "make_release_id",
    "plan_build",
    "previous_good_release",
    "prune_releases",
    "read_audit",
    "read_lock_holder",
    "record_action",
    "resolve_ref",
    "run_gates",
    "run_stage",
    "run_step",
    "save_record",
]
