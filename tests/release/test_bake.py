"""The bake's decisions, with a FakeClock."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steadylink.clock import FakeClock
from steadylink.release.bake import Baked, BakeDecision, BakePolicy, BakeWatch, Baking, RollBack
from steadylink.release.canary import AbortCause, CanaryPolicy, GroupFigures, ServerFigures
from steadylink.settings import ReleaseSettings

START = ServerFigures(requests=10_000, errors_5xx=7, latency_ms=4.0)


def bake(
    *,
    fails_one_in: int | None,
    baseline_ratio: float = 0.0,
    per_second: int = 100,
    seconds: int = 40,
    latency_ms: float = 4.0,
) -> tuple[BakeDecision, int]:
    """Bake a release serving ``per_second`` requests a second; the end and its second."""
    clock = FakeClock()
    watch = BakeWatch(BakePolicy(), clock, start=START)
    requests, errors = START.requests, START.errors_5xx
    decision: BakeDecision = Baking(watch.observe(START, baseline_ratio, 1000.0).figures)
    for second in range(1, seconds + 1):
        for i in range(per_second):
            n = second * per_second + i
            errors += fails_one_in is not None and n % fails_one_in == 0
        requests += per_second
        clock.advance(1.0)
        sample = ServerFigures(requests, errors, latency_ms)
        decision = watch.observe(sample, baseline_ratio, clock.monotonic(), baseline_latency_ms=4.0)
        if not isinstance(decision, Baking):
            return decision, second
    return decision, seconds


@pytest.mark.parametrize(
    ("label", "fails_one_in", "baseline_ratio", "expected", "within_s"),
    [
        ("a good release", None, 0.0, Baked, 30),
        ("errors like before", 200, 0.005, Baked, 30),
        ("everything fails", 1, 0.0, RollBack, 1),
        ("a quarter fails", 4, 0.0, RollBack, 1),
        ("5 % against 0.5 % before", 20, 0.005, RollBack, 10),
    ],
)
def test_the_bake_rolls_back_when_the_error_budget_burns(
    label: str,
    fails_one_in: int | None,
    baseline_ratio: float,
    expected: type,
    within_s: int,
) -> None:
    decision, second = bake(fails_one_in=fails_one_in, baseline_ratio=baseline_ratio)
    assert isinstance(decision, expected), label
    assert second <= within_s, label
    if isinstance(decision, RollBack):
        assert decision.cause == AbortCause.ERRORS
        assert "during the bake" in decision.reason


def test_a_good_bake_ends_after_bake_seconds() -> None:
    decision, second = bake(fails_one_in=None)
    assert isinstance(decision, Baked)
    assert second == 30
    assert decision.figures.to_record()["requests"] == 3000


def test_latency_far_above_before_rolls_back() -> None:
    decision, _ = bake(fails_one_in=None, latency_ms=50.0)
    assert isinstance(decision, RollBack) and decision.cause == AbortCause.LATENCY


def test_thin_traffic_asks_for_synthetic_requests_and_waits_for_them() -> None:
    clock = FakeClock()
    watch = BakeWatch(BakePolicy(seconds=10.0), clock, start=START)
    clock.advance(4.0)
    early = watch.observe(START, 0.0, clock.monotonic())
    assert isinstance(early, Baking) and not early.needs_synthetic_traffic
    clock.advance(10.0)
    thin = watch.observe(START, 0.0, clock.monotonic())
    assert isinstance(thin, Baking) and thin.needs_synthetic_traffic
    fed = ServerFigures(START.requests + 60, START.errors_5xx)
    assert isinstance(watch.observe(fed, 0.0, clock.monotonic()), Baked)


def test_a_crash_or_a_long_down_rolls_back() -> None:
    clock = FakeClock()
    watch = BakeWatch(BakePolicy(), clock, start=START)
    crash = watch.observe(START, 0.0, clock.monotonic(), is_crashing=True)
    assert isinstance(crash, RollBack) and crash.cause == AbortCause.CRASH
    assert watch.observe(START, 0.0, clock.monotonic()) is crash

    watch = BakeWatch(BakePolicy(), clock, start=START)
    down = ServerFigures(START.requests, START.errors_5xx, is_down=True)
    assert isinstance(watch.observe(down, 0.0, clock.monotonic()), Baking)
    clock.advance(2.0)
    decision = watch.observe(down, 0.0, clock.monotonic())
    assert isinstance(decision, RollBack) and "DOWN" in decision.reason


def test_the_policy_comes_from_the_settings() -> None:
    policy = BakePolicy.from_settings(ReleaseSettings(bake_seconds=12.0, canary_error_floor=0.02))
    assert policy.seconds == 12.0
    assert policy.canary == CanaryPolicy(error_floor=0.02)


@settings(max_examples=200, deadline=None)
@given(
    baseline_ratio=st.sampled_from([0.0, 0.001, 0.01, 0.1]),
    seconds=st.lists(st.integers(0, 400), max_size=40),
    shares=st.lists(st.floats(0.0, 1.0), min_size=40, max_size=40),
)
def test_a_release_no_worse_than_before_is_never_rolled_back_for_errors(
    baseline_ratio: float, seconds: list[int], shares: list[float]
) -> None:
    clock = FakeClock()
    watch = BakeWatch(BakePolicy(), clock, start=START)
    requests, errors = START.requests, START.errors_5xx
    for served, share in zip(seconds, shares, strict=False):
        requests += served
        errors += int(served * baseline_ratio * share)
        clock.advance(1.0)
        decision = watch.observe(ServerFigures(requests, errors), baseline_ratio, clock.monotonic())
        assert not (isinstance(decision, RollBack) and decision.cause == AbortCause.ERRORS)


def test_counters_restarted_by_a_haproxy_reload_count_from_zero() -> None:
    clock = FakeClock()
    watch = BakeWatch(BakePolicy(), clock, start=START)
    clock.advance(1.0)
    watch.observe(ServerFigures(START.requests + 100, START.errors_5xx), 0.0, clock.monotonic())
    clock.advance(1.0)
    decision = watch.observe(ServerFigures(50, 0), 0.0, clock.monotonic())
    assert isinstance(decision, Baking)
    assert (decision.figures.requests, decision.figures.errors) == (150, 0)


MB = 1024 * 1024


def bake_groups(group: Callable[[int], GroupFigures], previous: GroupFigures) -> tuple[BakeDecision, int]:
    """A bake whose answers are all fine; ``group(second)`` is the new release's processes."""
    clock = FakeClock()
    watch = BakeWatch(BakePolicy(), clock, start=START, start_group=group(0), start_baseline_group=previous)
    requests = START.requests
    decision: BakeDecision = Baking(watch.observe(START, 0.0, 1000.0).figures)
    for second in range(1, 41):
        requests += 100
        clock.advance(1.0)
        decision = watch.observe(
            ServerFigures(requests, START.errors_5xx, 4.0),
            0.0,
            clock.monotonic(),
            group=group(second),
            baseline_group=previous,
        )
        if not isinstance(decision, Baking):
            return decision, second
    return decision, 40


def test_a_worker_restart_during_the_bake_rolls_back() -> None:
    decision, second = bake_groups(
        lambda s: GroupFigures(restarts=int(s >= 5), rss_bytes=300 * MB), GroupFigures(0, 300 * MB)
    )
    assert isinstance(decision, RollBack) and decision.cause is AbortCause.CRASH
    assert second == 5


def test_memory_running_away_during_the_bake_rolls_back_while_the_previous_is_warm() -> None:
    decision, second = bake_groups(lambda s: GroupFigures(0, (300 + 50 * s) * MB), GroupFigures(0, 300 * MB))
    assert isinstance(decision, RollBack) and decision.cause is AbortCause.MEMORY
    assert second == 5  # 250 MB > the 200 MB floor
    steady, _ = bake_groups(lambda s: GroupFigures(0, (300 + s) * MB), GroupFigures(0, 300 * MB))
    assert isinstance(steady, Baked)
