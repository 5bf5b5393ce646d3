"""The fault tier: real processes, real faults, every answer checked (``tests/faults/``).

Each fault runs against a real ``steadylink serve`` under a checked load and
must hold the same targets: no redirect of a held link fails, every other
request that fails does so within a second with a fixed sentence (no stack
trace, SQL, driver text or another user's data), and afterwards no
acknowledged link and no visit is missing.
"""

from __future__ import annotations

import signal
from pathlib import Path

from tests.faults import scenarios
from tests.faults.scenarios import SLOW_FAILURE_SECONDS, Row


def assert_held(row: Row) -> None:
    tally = row.tally
    assert tally.total > 100, f"{row.fault}: the load hardly ran ({tally.total} requests)"
    assert row.failed_redirects == [], (
        f"{row.fault}: redirects of held links failed: {row.failed_redirects[:3]}"
    )
    assert tally.leaks() == [], f"{row.fault}: internal text reached a client: {tally.leaks()[:2]}"
    assert tally.foreign(set(tally.acknowledged.values())) == [], (
        f"{row.fault}: another user's data in an answer"
    )
    assert row.slow_failures == [], f"{row.fault}: failures that took over {SLOW_FAILURE_SECONDS} s: {row.slow_failures[:3]}"
    assert row.links_lost == 0, f"{row.fault}: {row.links_lost} acknowledged links lost"
    assert row.visits_lost == 0, f"{row.fault}: {row.visits_lost} visits lost"


def test_postgresql_blackholed_for_15_seconds(tmp_path: Path) -> None:
    with scenarios.postgres_blackholed(tmp_path) as (server, proxy):
        row = scenarios.run_fault("PostgreSQL blackholed", server, inject=proxy.blackhole, heal=proxy.restore)
    assert_held(row)
    assert row.tally.failures, "the blackhole must have been felt (creates, pages)"
    assert all("not answering" in f.body for f in row.tally.failures if f.kind == "create")
    assert row.recovery_seconds is not None and row.recovery_seconds < 5


def test_the_data_dirs_disk_full(tmp_path: Path) -> None:
    with scenarios.disk_to_fill(tmp_path) as server:
        row = scenarios.run_fault(
            "disk full", server, inject=lambda: scenarios.fill_disk(server),
            heal=lambda: scenarios.free_disk(server), during=8.0,
        )  # fmt: skip
    assert_held(row)
    uploads = [f for f in row.tally.failures if f.kind == "upload"]
    assert uploads and all(f.status == 503 and "disk is full" in f.body for f in uploads)


def test_redis_stopped(tmp_path: Path) -> None:
    with scenarios.redis_of_our_own(tmp_path) as (server, redis):
        row = scenarios.run_fault(
            "Redis stopped", server, inject=lambda: redis.send_signal(signal.SIGSTOP),
            heal=lambda: redis.send_signal(signal.SIGCONT), during=8.0,
        )  # fmt: skip
    assert_held(row)
    assert row.tally.failures == []  # rate limits fail open to the worker's own counts
