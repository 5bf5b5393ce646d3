"""Deploys the last guard died in the middle of, ended by the guard that starts next.

A deploy runs inside the guard, so a guard killed during one (``kill -9``, a
crash, the machine restarting) leaves its release mid-way: recorded as still
building or canarying, and — when ``up`` then adopts the running HAProxy — a
candidate still taking its canary share with nobody judging it. The next
guard ends each such deploy before it serves: a candidate in traffic is taken
out of it and stopped (``rolled_back``, it had reached users), one that never
got traffic is ``rejected``, each with a step saying why and a journal event.
A release that had been promoted and was baking keeps serving: its record gets
a ``bake`` step saying the bake was cut short, and the previous release stays
warm for ``steadylink rollback``.
"""

from __future__ import annotations

from collections.abc import Callable

from steadylink.errors import Conflict, SteadylinkError
from steadylink.release.canary import FULL_WEIGHT
from steadylink.release.guard import Guard
from steadylink.release.history import ReleaseRecord, StepRecord, list_records, save_record
from steadylink.release.lock import acquire_lock
from steadylink.release.staging import stop_left_stage_groups

CAUGHT_BY = "guard restart"
UNFINISHED = ("building", "gated", "staged", "canary")


def end_interrupted_deploys(guard: Guard, progress: Callable[[str], None] = print) -> list[ReleaseRecord]:
    """End what the last guard left mid-deploy; the records it changed."""
    try:
        lock = acquire_lock(
            guard.data_dir, holder="guard", message="ending interrupted deploys", clock=guard.clock
        )
    except Conflict:
        return []  # a deploy runs now: nothing of it was interrupted
    except OSError as exc:
        progress(f"could not take the deploy lock to look for deploys a stopped guard left ({exc})")
        return []
    with lock:
        ended: list[ReleaseRecord] = []
        try:
            stop_left_stage_groups(guard.run_dir, progress)
            records = list_records(guard.data_dir)
        except (OSError, ValueError, SteadylinkError) as exc:
            progress(f"could not look for deploys a stopped guard left ({exc}); they stay as recorded")
            return ended
        for record in records:
            try:
                if record.verdict in UNFINISHED and record.id == guard.state.serving:
                    # promoted in the guard's state, the record not yet saved as such
                    record.verdict = "promoted"
                    save_record(guard.data_dir, record)
                if record.verdict in UNFINISHED:
                    ended.append(_end(guard, record, progress))
                elif record.verdict == "promoted" and _was_baking(guard, record):
                    ended.append(_cut_bake(guard, record, progress))
            except (OSError, ValueError, SteadylinkError) as exc:  # the guard serves on regardless
                progress(f"could not end the deploy of {record.id} ({exc}); it stays as recorded")
        return ended


def _end(guard: Guard, record: ReleaseRecord, progress: Callable[[str], None]) -> ReleaseRecord:
    slot = guard.state.slot_of(record.id)
    share = guard.state.weights.get(slot, 0) if slot is not None else 0
    if slot is not None:
        serving = guard.state.slot_of(guard.state.serving or "")
        if serving is not None:  # all traffic back first: it may have been the candidate's already
            guard.set_traffic({serving: FULL_WEIGHT, slot: 0})
        guard.retire(slot)
    # users met it only if it is still in traffic now; a record left "canary" by an older
    # guard with nothing of it running is ended quietly
    reached = record.verdict == "canary" and slot is not None
    was = record.verdict + (f", at {share} of the traffic's weight" if reached else "")
    done = "its workers were taken out of traffic and stopped" if slot is not None else "it no longer runs"
    why = (
        f"the guard stopped during this deploy ({was}); the guard that started next ended it: "
        f"{done}, {guard.state.serving} serves"
    )
    record.steps.append(StepRecord("interrupted", "failed", guard.clock.now(), 0.0, why))
    record.verdict = "rolled_back" if record.verdict == "canary" else "rejected"
    record.caught_by = CAUGHT_BY
    save_record(guard.data_dir, record)
    kind = "release.rolled_back" if record.verdict == "rolled_back" else "release.rejected"
    if guard.journal is not None:
        guard.journal.append(
            kind, f"{record.id} ended by the {CAUGHT_BY}: {why}", release=record.id,
            severity="error" if reached else "warning",
            body={
                "automatic": True, "by": "guard", "reason": why, "reached_users": reached, "step": CAUGHT_BY,
            },
        )  # fmt: skip
    progress(f"{record.id}: {why}")
    return record


def _was_baking(guard: Guard, record: ReleaseRecord) -> bool:
    """Promoted and serving with the previous release kept warm, and no bake recorded: the
    guard died during the bake (a finished bake records itself and lets the previous go)."""
    return (
        guard.state.serving == record.id
        and guard.state.warm_previous is not None
        and not any(step.name == "bake" for step in record.steps)
    )


def _cut_bake(guard: Guard, record: ReleaseRecord, progress: Callable[[str], None]) -> ReleaseRecord:
    warm = guard.state.warm_previous
    keep = f"; {warm} stays warm: `steadylink rollback` returns to it" if warm else ""
    why = f"the bake was cut short: the guard stopped during it{keep}"
    record.steps.append(StepRecord("bake", "skipped", guard.clock.now(), 0.0, why))
    save_record(guard.data_dir, record)
    progress(f"{record.id}: {why}")
    return record
