"""The canary's decisions, driven by simulated traffic and a FakeClock."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steadylink.clock import FakeClock
from steadylink.errors import ConfigError
from steadylink.release.canary import (
    Abort,
    AbortCause,
    Advance,
    CanaryAnalysis,
    CanaryPolicy,
    Decision,
    GroupFigures,
    Hold,
    Promote,
    Sample,
    ServerFigures,
    Weights,
    binomial_tail,
)
from steadylink.settings import ReleaseSettings

TICK_S = 0.05
REQUESTS_PER_TICK = 20  # 400 req/s through the front door

Fails = Callable[[int], bool]


def never(i: int) -> bool:
    return False


def always(i: int) -> bool:
    return True


def one_in(k: int) -> Fails:
    """The i-th request fails every k requests: a ratio of exactly 1/k, spread out."""
    return lambda i: i % k == k - 1


def thirty_percent(i: int) -> bool:
    return (i * 3) % 10 < 3


@dataclass
class Run:
    decision: Decision
    decisions: list[Decision]
    candidate_requests: int
    seconds: float


def run_canary(
    *,
    candidate_fails: Fails,
    stable_fails: Fails = never,
    candidate_latency_ms: float = 4.0,
    stable_latency_ms: float = 4.0,
    policy: CanaryPolicy | None = None,
    max_seconds: float = 300.0,
) -> Run:
    """Send traffic request by request, split by the canary's weight, until a final decision."""
    policy = policy or CanaryPolicy()
    clock = FakeClock()
    stable = [0, 0]
    candidate = [0, 0]

    def sample() -> Sample:
        return Sample(
            stable=ServerFigures(stable[0], stable[1], stable_latency_ms),
            candidate=ServerFigures(candidate[0], candidate[1], candidate_latency_ms),
        )

    analysis = CanaryAnalysis(policy, clock, start=sample())
    decisions: list[Decision] = []
    credit = 0.0
    while clock.monotonic() - 1000.0 < max_seconds:
        weights = analysis.weights
        for _ in range(REQUESTS_PER_TICK):
            # Smooth weighted round robin, as HAProxy spreads requests.
            credit += weights.candidate / (weights.candidate + weights.stable)
            if credit >= 1.0:
                credit -= 1.0
                candidate[1] += candidate_fails(candidate[0])
                candidate[0] += 1
            else:
                stable[1] += stable_fails(stable[0])
                stable[0] += 1
        clock.advance(TICK_S)
        decision = analysis.observe(sample(), clock.monotonic())
        decisions.append(decision)
        if isinstance(decision, Promote | Abort):
            break
    return Run(decision, decisions, candidate[0], clock.monotonic() - 1000.0)


def test_a_good_release_goes_through_every_step_then_is_promoted() -> None:
    run = run_canary(candidate_fails=never)
    advances = [d.next_weight_percent for d in run.decisions if isinstance(d, Advance)]
    assert advances == [25, 50, 100]
    assert isinstance(run.decision, Promote)
    assert run.seconds >= 4 * CanaryPolicy().min_seconds


@pytest.mark.parametrize(
    ("label", "candidate_fails", "stable_fails", "expected", "max_requests"),
    [
        ("fails everything", always, never, AbortCause.ERRORS, 3),
        ("fails 30 %", thirty_percent, never, AbortCause.ERRORS, 12),
        ("fails 2 % against 0 %", one_in(50), never, AbortCause.ERRORS, 2000),
        ("0.5 % like the stable's 0.5 %", one_in(200), one_in(200), None, None),
        ("0.5 % against 0 %: under the 1 % floor", one_in(200), never, None, None),
        ("2 % against the stable's 1 %: under 5x", one_in(50), one_in(100), None, None),
    ],
)
def test_errors_are_judged_against_the_baseline(
    label: str,
    candidate_fails: Fails,
    stable_fails: Fails,
    expected: AbortCause | None,
    max_requests: int | None,
) -> None:
    run = run_canary(candidate_fails=candidate_fails, stable_fails=stable_fails)
    if expected is None:
        assert isinstance(run.decision, Promote), label
        return
    assert isinstance(run.decision, Abort), label
    assert run.decision.cause == expected
    assert max_requests is not None and run.candidate_requests <= max_requests, label


def test_a_release_failing_30_percent_is_stopped_at_the_first_step() -> None:
    run = run_canary(candidate_fails=thirty_percent)
    assert isinstance(run.decision, Abort)
    assert run.decision.figures.weight_percent == 5
    assert run.decision.weights == Weights(stable=100, candidate=0)
    assert "in the 5 % step" in run.decision.reason


def test_a_release_failing_2_percent_is_not_aborted_on_thin_evidence() -> None:
    run = run_canary(candidate_fails=one_in(50))
    assert isinstance(run.decision, Abort)
    assert run.candidate_requests > 500
    assert run.decision.figures.total_errors / run.decision.figures.total_requests > 0.01


def test_errors_that_show_only_at_a_larger_share_are_caught_in_that_step() -> None:
    fails_late = lambda i: i >= 200 and i % 4 == 0  # noqa: E731
    run = run_canary(candidate_fails=fails_late)
    assert isinstance(run.decision, Abort)
    assert run.decision.figures.weight_percent > 5


def test_latency_five_times_the_stable_release_aborts() -> None:
    run = run_canary(candidate_fails=never, candidate_latency_ms=100.0, stable_latency_ms=20.0)
    assert isinstance(run.decision, Abort)
    assert run.decision.cause == AbortCause.LATENCY
    assert run.candidate_requests == CanaryPolicy().latency_min_requests


def test_latency_differences_below_the_floor_are_noise() -> None:
    run = run_canary(candidate_fails=never, candidate_latency_ms=3.0, stable_latency_ms=0.0)
    assert isinstance(run.decision, Promote)


def _figures(
    requests: int = 0, errors: int = 0, *, is_down: bool = False, latency: float = 1.0
) -> ServerFigures:
    return ServerFigures(requests, errors, latency, is_down=is_down)


def test_no_traffic_asks_for_synthetic_requests_after_the_step_time() -> None:
    clock = FakeClock()
    start = Sample(_figures(), _figures())
    analysis = CanaryAnalysis(CanaryPolicy(), clock, start=start)
    clock.advance(1.0)
    early = analysis.observe(Sample(_figures(100), _figures(2)), clock.monotonic())
    assert early == Hold(early.figures, needs_synthetic_traffic=False)
    clock.advance(2.5)
    thin = analysis.observe(Sample(_figures(300), _figures(3)), clock.monotonic())
    assert isinstance(thin, Hold) and thin.needs_synthetic_traffic
    clock.advance(0.5)
    fed = analysis.observe(Sample(_figures(300), _figures(60)), clock.monotonic())
    assert isinstance(fed, Advance) and fed.weights == Weights(stable=75, candidate=25)


def test_a_crash_loop_aborts_at_once() -> None:
    clock = FakeClock()
    analysis = CanaryAnalysis(CanaryPolicy(), clock, start=Sample(_figures(), _figures()))
    decision = analysis.observe(Sample(_figures(10), _figures(), is_crashing=True), clock.monotonic())
    assert isinstance(decision, Abort) and decision.cause == AbortCause.CRASH


def test_down_in_haproxy_aborts_only_after_the_grace_period() -> None:
    clock = FakeClock()
    analysis = CanaryAnalysis(CanaryPolicy(), clock, start=Sample(_figures(), _figures()))
    down = Sample(_figures(10), _figures(is_down=True))
    assert isinstance(analysis.observe(down, clock.monotonic()), Hold)
    clock.advance(1.0)
    assert isinstance(analysis.observe(Sample(_figures(20), _figures()), clock.monotonic()), Hold)
    clock.advance(1.0)
    assert isinstance(analysis.observe(down, clock.monotonic()), Hold)  # down again: new count
    clock.advance(2.0)
    decision = analysis.observe(down, clock.monotonic())
    assert isinstance(decision, Abort) and "DOWN" in decision.reason


def test_final_decisions_stick() -> None:
    clock = FakeClock()
    analysis = CanaryAnalysis(CanaryPolicy(), clock, start=Sample(_figures(), _figures()))
    abort = analysis.observe(Sample(_figures(100), _figures(5, 5)), clock.monotonic())
    assert isinstance(abort, Abort)
    clock.advance(60)
    assert analysis.observe(Sample(_figures(999), _figures(999)), clock.monotonic()) is abort


def test_the_policy_comes_from_the_settings_and_checks_its_steps() -> None:
    policy = CanaryPolicy.from_settings(ReleaseSettings(canary_steps=(10, 100), canary_error_floor=0.02))
    assert policy.steps == (10, 100)
    assert policy.error_threshold(0.0) == 0.02
    assert policy.error_threshold(0.01) == pytest.approx(0.05)
    assert policy.error_threshold(0.5) == 1.0
    with pytest.raises(ConfigError, match="increasing"):
        CanaryPolicy(steps=(50, 25))
    with pytest.raises(ConfigError, match="1..100"):
        CanaryPolicy(steps=(0, 100))


def test_figures_go_into_the_record() -> None:
    run = run_canary(candidate_fails=always)
    record = run.decision.figures.to_record()
    assert record["weight_percent"] == 5
    assert record["errors"] == 3 and record["error_ratio"] == 1.0
    assert record["threshold"] == 0.01


@given(n=st.integers(1, 400), k=st.integers(0, 400), per_mille=st.sampled_from([1, 10, 50, 300]))
def test_the_binomial_tail_is_exact(n: int, k: int, per_mille: int) -> None:
    k = min(k, n)
    # Integer arithmetic: sum of C(n, i) a^i (b - a)^(n - i), over b^n.
    a, b = per_mille, 1000
    exact = Fraction(sum(math.comb(n, i) * a**i * (b - a) ** (n - i) for i in range(k, n + 1)), b**n)
    assert binomial_tail(n, k, a / b) == pytest.approx(float(exact), rel=1e-9, abs=1e-300)


Tick = tuple[int, int, int, int]  # stable requests, stable errors, candidate requests, errors


def _judge(ticks: list[Tick], policy: CanaryPolicy) -> tuple[int, Decision]:
    """Feed per-tick increments; the index and decision where it ended."""
    clock = FakeClock()
    s, c = [0, 0], [0, 0]
    analysis = CanaryAnalysis(policy, clock, start=Sample(_figures(), _figures()))
    decision: Decision = Hold(analysis.observe(Sample(_figures(), _figures()), 1000.0).figures)
    for index, (sr, se, cr, ce) in enumerate(ticks):
        s[0], s[1], c[0], c[1] = s[0] + sr, s[1] + se, c[0] + cr, c[1] + ce
        clock.advance(1.0)
        decision = analysis.observe(Sample(_figures(*s), _figures(*c)), clock.monotonic())
        if isinstance(decision, Promote | Abort):
            return index, decision
    return len(ticks), decision


_FAST_POLICY = CanaryPolicy(min_requests=20, min_seconds=2.0)


@settings(max_examples=300, deadline=None)
@given(
    ratio=st.sampled_from([0.0, 0.001, 0.005, 0.02, 0.1, 0.5]),
    traffic=st.lists(st.tuples(st.integers(0, 500), st.integers(0, 60)), max_size=40),
    shares=st.lists(st.floats(0.0, 1.0), min_size=40, max_size=40),
)
def test_a_candidate_never_worse_than_the_baseline_is_never_aborted_for_errors(
    ratio: float, traffic: list[tuple[int, int]], shares: list[float]
) -> None:
    # Stable errors round up and the candidate's round down, so over any window
    # the candidate's ratio is at most `ratio` and the stable's at least.
    ticks = [
        (sr, math.ceil(sr * ratio), cr, math.floor(cr * ratio * share))
        for (sr, cr), share in zip(traffic, shares, strict=False)
    ]
    _, decision = _judge(ticks, _FAST_POLICY)
    assert not (isinstance(decision, Abort) and decision.cause == AbortCause.ERRORS)


@settings(max_examples=300, deadline=None)
@given(
    ticks=st.lists(
        st.tuples(st.integers(0, 300), st.integers(0, 10), st.integers(0, 60), st.integers(0, 60)),
        max_size=40,
    ),
    extra=st.lists(st.integers(0, 60), min_size=40, max_size=40),
)
def test_more_errors_never_turn_an_abort_into_a_promotion(ticks: list[Tick], extra: list[int]) -> None:
    ticks = [(sr, min(se, sr), cr, min(ce, cr)) for sr, se, cr, ce in ticks]
    worse = [(sr, se, cr, min(cr, ce + more)) for (sr, se, cr, ce), more in zip(ticks, extra, strict=False)]
    ended, decision = _judge(ticks, _FAST_POLICY)
    ended_worse, decision_worse = _judge(worse, _FAST_POLICY)
    if isinstance(decision, Abort):
        assert isinstance(decision_worse, Abort)
        assert ended_worse <= ended
    if isinstance(decision_worse, Promote):
        assert isinstance(decision, Promote)


def test_counters_restarted_by_a_haproxy_reload_count_from_zero() -> None:
    clock = FakeClock()
    analysis = CanaryAnalysis(CanaryPolicy(), clock, start=Sample(_figures(50_000, 40), _figures(9_000, 2)))
    clock.advance(1.0)
    before = analysis.observe(Sample(_figures(50_400, 40), _figures(9_020, 2)), clock.monotonic())
    assert (before.figures.total_requests, before.figures.baseline_requests) == (20, 400)
    clock.advance(1.0)
    reloaded = analysis.observe(Sample(_figures(300), _figures(15)), clock.monotonic())
    assert isinstance(reloaded, Hold)
    assert (reloaded.figures.total_requests, reloaded.figures.total_errors) == (35, 0)
    assert (reloaded.figures.baseline_requests, reloaded.figures.baseline_errors) == (700, 0)


MB = 1024 * 1024


def run_groups(
    groups: Callable[[float], tuple[GroupFigures, GroupFigures]], *, max_seconds: float = 60.0
) -> tuple[Decision, float]:
    """A canary whose answers are all fine; ``groups(t)`` gives (candidate, stable) processes at t s."""
    clock = FakeClock()
    served = [0]

    def sample(t: float) -> Sample:
        candidate, stable = groups(t)
        return Sample(
            stable=ServerFigures(served[0] * 9, 0, 4.0),
            candidate=ServerFigures(served[0], 0, 4.0),
            candidate_group=candidate,
            stable_group=stable,
        )

    analysis = CanaryAnalysis(CanaryPolicy(), clock, start=sample(0.0))
    decision: Decision = analysis.observe(sample(0.0), clock.monotonic())
    while clock.monotonic() - 1000.0 < max_seconds:
        served[0] += 10
        clock.advance(TICK_S)
        t = clock.monotonic() - 1000.0
        decision = analysis.observe(sample(t), clock.monotonic())
        if isinstance(decision, Promote | Abort):
            return decision, t
    return decision, max_seconds


def steady(rss_mb: float) -> GroupFigures:
    return GroupFigures(restarts=0, rss_bytes=int(rss_mb * MB))


def test_a_worker_restart_behind_a_live_leader_stops_the_canary() -> None:
    # granian replaces the worker at once: answers stay fine, the leader lives on
    decision, t = run_groups(
        lambda t: (GroupFigures(restarts=int(t >= 2.0), rss_bytes=300 * MB), steady(300))
    )
    assert isinstance(decision, Abort) and decision.cause is AbortCause.CRASH
    assert 2.0 <= t < 2.1
    assert "1 worker restart(s)" in decision.reason


def test_restarts_counted_before_the_canary_began_do_not_count() -> None:
    decision, _ = run_groups(lambda t: (GroupFigures(restarts=3, rss_bytes=300 * MB), steady(300)))
    assert isinstance(decision, Promote)


@pytest.mark.parametrize(
    ("label", "candidate_mb", "stable_mb", "expected"),
    [
        ("flat memory", lambda t: 300.0, lambda t: 300.0, Promote),
        ("grows like the stable release", lambda t: 300 + 20 * t, lambda t: 300 + 10 * t, Promote),
        ("grows 135 MB a second", lambda t: 300 + 135 * t, lambda t: 300.0, Abort),
        ("grows 4x the stable's growth", lambda t: 300 + 80 * t, lambda t: 300 + 20 * t, Abort),
        ("over the ceiling from the start", lambda t: 5000.0, lambda t: 5000.0, Abort),
    ],
)
def test_memory_is_judged_against_the_stable_release(
    label: str,
    candidate_mb: Callable[[float], float],
    stable_mb: Callable[[float], float],
    expected: type,
) -> None:
    decision, _ = run_groups(lambda t: (steady(candidate_mb(t)), steady(stable_mb(t))))
    assert isinstance(decision, expected), (label, decision)
    if isinstance(decision, Abort):
        assert decision.cause is AbortCause.MEMORY
        assert "MB" in decision.reason


def test_a_leak_of_135_mb_a_second_is_stopped_within_two_seconds() -> None:
    decision, t = run_groups(lambda t: (steady(300 + 135 * t), steady(300)))
    assert isinstance(decision, Abort) and t < 2.0


def test_without_a_view_of_the_processes_memory_is_not_judged() -> None:
    unseen = GroupFigures(restarts=0, rss_bytes=None)
    decision, _ = run_groups(lambda t: (unseen, unseen))
    assert isinstance(decision, Promote)
