"""Ten simulated minutes of a healthy front door with stray errors: no page, from any rule."""

import random

from tests.watch.sim import Sim


def test_a_healthy_run_with_injected_single_errors_never_pages() -> None:
    rng = random.Random(11)
    sim = Sim()
    sim.with_readings(
        disk_used_percent=40.0, database_ok=True, backup_age_seconds=3600.0, loop_lag_seconds=0.001
    )
    for i in range(600):
        stray_probe = i in (100, 250, 251, 400)  # single failures and one pair
        failures = 1 if rng.random() < 0.02 else 0  # a stray 5xx now and then
        sim.second(
            probe_ok=not stray_probe, requests=rng.randint(0, 30), failures=failures,
            latency_ms=rng.choice([4.0, 6.0, 9.0, 180.0 if i % 97 == 0 else 5.0]),
        )  # fmt: skip
    assert sim.pages() == []
