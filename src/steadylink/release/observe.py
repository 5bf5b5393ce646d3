"""The canary and bake loops: read HAProxy's per-slot figures, ask the analysis,
act on its decision at once.

The analysis (``canary.py``, ``bake.py``) is pure; this module is the small
executor around it: it samples ``show stat`` every ``TICK`` seconds, applies
weights through the runtime API, and sends synthetic requests straight to the
candidate's socket when real traffic is too thin to judge it (counted into the
candidate's figures, tagged with a bot user agent so link stats keep them apart).
It also reads both worker groups' processes from ``/proc`` (every
``GROUP_EVERY`` seconds: a pass over ``/proc`` costs a few ms) for worker
restarts and memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from steadylink.clock import Clock
from steadylink.edge import ServerStats
from steadylink.links.sql_store import open_store
from steadylink.release.bake import Baked, BakeFigures, BakePolicy, BakeWatch, RollBack
from steadylink.release.canary import (
    Abort,
    Advance,
    CanaryAnalysis,
    CanaryPolicy,
    GroupFigures,
    Hold,
    Promote,
    Sample,
    ServerFigures,
)
from steadylink.release.guard import FULL_WEIGHT, Guard
from steadylink.release.history import StepRecord, StepVerdict
from steadylink.release.processes import RestartCount, read_groups
from steadylink.release.workers import is_alive
from steadylink.uds import uds_transport

TICK = 0.1
BAKE_REPORT_SECONDS = 5.0
GROUP_EVERY = 0.3
SYNTHETIC_BURST = 10
# one synthetic request in this many (and one more) is a page: the home page or a link page
SYNTHETIC_PAGE_EVERY = 3
SYNTHETIC_PAGES = 3
SYNTHETIC_AGENT = "steadylink-canary/1 (synthetic; bot)"
CANARY_TIMEOUT = 600.0

Progress = Callable[[str], None]


@dataclass
class ObservedOutcome:
    is_passed: bool
    reason: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    baseline_ratio: float = 0.0
    baseline_latency_ms: float | None = None


@dataclass
class _Synthetic:
    requests: int = 0
    errors: int = 0


class _Reader:
    """Per-slot figures from ``show stat``; a slot missing from one answer keeps
    its last counters and reads as down (zeros would look like a counter reset)."""

    def __init__(self) -> None:
        self.last: dict[int, ServerFigures] = {}

    def read(
        self, stats: dict[int, ServerStats], slot: int, extra: _Synthetic | None = None
    ) -> ServerFigures:
        row = stats.get(slot)
        if row is None:
            seen = self.last.get(slot, ServerFigures(0, 0, None))
            return ServerFigures(seen.requests, seen.errors_5xx, seen.latency_ms, is_down=True)
        figures = figures_of(row, extra)
        self.last[slot] = figures
        return figures


class _Groups:
    """Worker restarts and memory of some groups (by leader pid), counted from the first look."""

    def __init__(self, leaders: list[int]) -> None:
        self._leaders = leaders
        first = read_groups(leaders)
        self._counts = {n: RestartCount(g) for n, g in first.items()}
        self._figures = {n: GroupFigures(0, g.rss_bytes) for n, g in first.items()}
        self._read_at = time.monotonic()

    def figures(self, leader: int) -> GroupFigures:
        if time.monotonic() - self._read_at >= GROUP_EVERY:
            for n, group in read_groups(self._leaders).items():
                self._figures[n] = GroupFigures(self._counts[n].add(group), group.rss_bytes)
            self._read_at = time.monotonic()
        return self._figures[leader]


def figures_of(stats: ServerStats, extra: _Synthetic | None = None) -> ServerFigures:
    extra = extra or _Synthetic()
    return ServerFigures(
        requests=stats.lbtot + extra.requests,
        errors_5xx=stats.failures + extra.errors,
        latency_ms=float(stats.rtime) if stats.lbtot else None,
        is_down=not stats.is_up,
    )


def run_canary(
    *, guard: Guard, stable_slot: int, candidate_slot: int, clock: Clock, progress: Progress
) -> ObservedOutcome:
    runtime = guard.edge.runtime if guard.edge else None
    assert runtime is not None
    policy = CanaryPolicy.from_settings(guard.settings.release)
    synthetic = _Synthetic()
    codes = _sample_codes(guard)
    entry = guard.state.slots[candidate_slot]

    reader = _Reader()
    stable_pid = guard.state.slots[stable_slot].pid
    groups = _Groups([entry.pid, stable_pid])

    def sample() -> Sample:
        stats = runtime.server_stats()
        return Sample(
            stable=reader.read(stats, stable_slot),
            candidate=reader.read(stats, candidate_slot, synthetic),
            is_crashing=not is_alive(entry.pid),
            candidate_group=groups.figures(entry.pid),
            stable_group=groups.figures(stable_pid),
        )

    analysis = CanaryAnalysis(policy, clock, start=sample())
    first = analysis.weights
    guard.set_traffic({candidate_slot: first.candidate, stable_slot: first.stable})
    progress(f"canary: {first.candidate} % of traffic")
    step_started = clock.now()
    deadline = time.monotonic() + CANARY_TIMEOUT
    steps: list[StepRecord] = []
    stable_release = guard.state.serving
    while time.monotonic() < deadline:
        if guard.state.serving != stable_release:
            # an operator rolled back meanwhile: their weights stand, the canary ends
            return ObservedOutcome(False, f"an operator rolled back to {guard.state.serving}", steps)
        decision = analysis.observe(sample(), clock.monotonic())
        if isinstance(decision, Abort):
            guard.set_traffic({candidate_slot: 0, stable_slot: FULL_WEIGHT})
            steps.append(
                _canary_step(
                    analysis.weight_percent,
                    "failed",
                    step_started,
                    clock,
                    decision.reason,
                    decision.figures.to_record(),
                )
            )
            return ObservedOutcome(False, decision.reason, steps)
        if isinstance(decision, Promote):
            steps.append(
                _canary_step(
                    analysis.weight_percent,
                    "passed",
                    step_started,
                    clock,
                    "promoted",
                    decision.figures.to_record(),
                )
            )
            figures = decision.figures
            return ObservedOutcome(True, "", steps, figures.baseline_ratio, figures.baseline_latency_ms)
        if isinstance(decision, Advance):
            steps.append(
                _canary_step(
                    decision.figures.weight_percent,
                    "passed",
                    step_started,
                    clock,
                    "",
                    decision.figures.to_record(),
                )
            )
            weights = decision.weights
            guard.set_traffic({candidate_slot: weights.candidate, stable_slot: weights.stable})
            progress(f"canary: {decision.next_weight_percent} % of traffic")
            step_started = clock.now()
            continue
        assert isinstance(decision, Hold)
        if decision.needs_synthetic_traffic:
            _send_synthetic(guard, candidate_slot, codes, synthetic)
        time.sleep(TICK)
    guard.set_traffic({candidate_slot: 0, stable_slot: FULL_WEIGHT})
    return ObservedOutcome(False, f"the canary did not finish within {CANARY_TIMEOUT:g}s", steps)


def run_bake(
    *,
    guard: Guard,
    slot: int,
    previous_slot: int | None = None,
    baseline_ratio: float,
    baseline_latency_ms: float | None = None,
    clock: Clock,
    progress: Progress,
) -> ObservedOutcome:
    """Watch the promoted release for the bake period; RollBack if its errors rise."""
    runtime = guard.edge.runtime if guard.edge else None
    assert runtime is not None
    watch_policy = BakePolicy.from_settings(guard.settings.release)
    entry = guard.state.slots[slot]
    started = clock.now()
    synthetic = _Synthetic()
    codes = _sample_codes(guard)

    reader = _Reader()
    if previous_slot is None and guard.state.warm_previous is not None:
        previous_slot = guard.state.slot_of(guard.state.warm_previous)
    previous = guard.state.slots.get(previous_slot) if previous_slot is not None else None
    leaders = [entry.pid, *([previous.pid] if previous else [])]
    groups = _Groups(leaders)

    def figures() -> ServerFigures:
        return reader.read(runtime.server_stats(), slot, synthetic)

    def baseline_group() -> GroupFigures | None:
        return groups.figures(previous.pid) if previous else None

    watch = BakeWatch(
        watch_policy,
        clock,
        start=figures(),
        start_group=groups.figures(entry.pid),
        start_baseline_group=baseline_group(),
    )
    next_report = clock.monotonic()
    while True:
        decision = watch.observe(
            figures(),
            baseline_ratio,
            clock.monotonic(),
            baseline_latency_ms=baseline_latency_ms,
            is_crashing=not is_alive(entry.pid),
            group=groups.figures(entry.pid),
            baseline_group=baseline_group(),
        )
        if isinstance(decision, RollBack):
            step = StepRecord(
                "bake",
                "failed",
                started,
                _since(started, clock),
                decision.reason,
                _plain(decision.figures.to_record()),
            )
            progress(f"bake: {decision.reason}; rolling back")
            return ObservedOutcome(False, decision.reason, [step])
        if isinstance(decision, Baked):
            step = StepRecord(
                "bake",
                "passed",
                started,
                _since(started, clock),
                "error budget held",
                _plain(decision.figures.to_record()),
            )
            progress("bake: passed")
            return ObservedOutcome(True, "", [step])
        if clock.monotonic() >= next_report:  # a countdown with the figures so far
            next_report += BAKE_REPORT_SECONDS
            progress(describe_bake(decision.figures, watch_policy.seconds))
        if decision.needs_synthetic_traffic:
            _send_synthetic(guard, slot, codes, synthetic)
        time.sleep(TICK)


def describe_bake(figures: BakeFigures, bake_seconds: float) -> str:
    left = max(0.0, bake_seconds - figures.seconds)
    latency = f", latency {figures.latency_ms:.0f} ms" if figures.latency_ms is not None else ""
    return (
        f"bake: {left:.0f} s left; {figures.requests} requests, {figures.errors} errors "
        f"({figures.error_ratio:.2%}, limit {figures.threshold:.2%}){latency}"
    )


def _plain(figures: Mapping[str, object]) -> dict[str, float | int | str]:
    return {k: v for k, v in figures.items() if isinstance(v, (int, float, str))}


def _canary_step(
    percent: int,
    verdict: StepVerdict,
    started: datetime,
    clock: Clock,
    note: str,
    figures: Mapping[str, object],
) -> StepRecord:
    return StepRecord(f"canary {percent}%", verdict, started, _since(started, clock), note, _plain(figures))


def _since(started: datetime, clock: Clock) -> float:
    return (clock.now() - started).total_seconds()


def _sample_codes(guard: Guard) -> list[str]:
    store = open_store(guard.settings.database_url)
    try:
        return store.sample_codes(50) or []
    finally:
        store.close()


def synthetic_paths(codes: list[str]) -> list[str]:
    """What the synthetic traffic asks: redirects of sampled links, and among them, as users
    open them, the home page and link pages (a release that breaks only those is caught too)."""
    redirects = [f"/{c}" for c in codes] or ["/healthz"]
    pages = ["/", *(f"/s/{c}" for c in codes[:SYNTHETIC_PAGES])]
    mixed: list[str] = []
    for i, path in enumerate(redirects):
        mixed.append(path)
        if i % SYNTHETIC_PAGE_EVERY == 0:
            mixed.append(pages[(i // SYNTHETIC_PAGE_EVERY) % len(pages)])
    return mixed


def _send_synthetic(guard: Guard, slot: int, codes: list[str], counts: _Synthetic) -> None:
    paths = synthetic_paths(codes)
    socket = guard.edge_config.slot_socket(slot)
    with httpx.Client(
        transport=uds_transport(socket),
        base_url="http://canary",
        timeout=2.0,
        headers={"User-Agent": SYNTHETIC_AGENT, "Accept": "application/json"},
    ) as client:
        for _ in range(SYNTHETIC_BURST):
            counts.requests += 1
            try:
                status = client.get(paths[counts.requests % len(paths)]).status_code
            except httpx.HTTPError:
                status = 599
            if status >= 500:
                counts.errors += 1
