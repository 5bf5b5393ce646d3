"""Staging's differential: its sample size and its power, from the settings."""

import random

import pytest

from steadylink.release.stage_power import (
    detection_power,
    differential_sample_size,
    is_differential_failure,
)
from steadylink.settings import ReleaseSettings


def test_the_default_sample_catches_the_canary_floor_with_99_percent() -> None:
    settings = ReleaseSettings()
    n = differential_sample_size(settings)
    assert n == 459
    assert detection_power(n, settings) >= 0.99 > detection_power(n - 1, settings)


@pytest.mark.parametrize(("floor", "power"), [(0.01, 0.99), (0.02, 0.999), (0.005, 0.95), (0.1, 0.5)])
def test_the_sample_size_follows_the_settings(floor: float, power: float) -> None:
    settings = ReleaseSettings(canary_error_floor=floor, stage_power=power)
    n = differential_sample_size(settings)
    assert detection_power(n, settings) >= power > detection_power(n - 1, settings)


def test_a_fixed_sample_overrides_the_power() -> None:
    settings = ReleaseSettings(stage_sample=40)
    assert differential_sample_size(settings) == 40
    assert detection_power(40, settings) == pytest.approx(1 - 0.99**40)


def test_any_difference_fails_and_none_passes() -> None:
    settings = ReleaseSettings()
    assert not is_differential_failure(459, 0, settings)
    assert is_differential_failure(459, 1, settings)
    assert is_differential_failure(1, 1, settings)


def test_a_release_failing_at_random_at_the_floor_is_caught_99_times_in_100() -> None:
    """Simulated stagings of a release that differs on 1 % of requests at random."""
    settings, rng = ReleaseSettings(), random.Random(11)
    n, runs = differential_sample_size(settings), 4000
    caught = sum(
        is_differential_failure(n, sum(rng.random() < 0.01 for _ in range(n)), settings)
        for _ in range(runs)
    )
    assert caught / runs >= 0.985  # 0.99 expected; 0.985 is 4.5 standard errors below
