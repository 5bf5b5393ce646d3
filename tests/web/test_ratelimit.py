"""Rate limits on a FakeClock (no sleeping), in memory and on the real Redis."""

from __future__ import annotations

import logging
import secrets
import socket
import time
from collections.abc import Iterator

import pytest
import redis

from steadylink.clock import FakeClock
from steadylink.errors import RateLimited
from steadylink.settings import LimitSettings, Settings
from steadylink.web.ratelimit import (
    MemoryRateLimiter,
    RedisRateLimiter,
    Unlimited,
    build_rate_limiter,
    judge,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


def allowed(limiter: object, n: int, bucket: str = "create", client: str = "1.2.3.4") -> int:
    """How many of ``n`` checks in a row pass."""
    passed = 0
    for _ in range(n):
        try:
            limiter.check(bucket, client)  # type: ignore[attr-defined]
        except RateLimited:
            continue
        passed += 1
    return passed


def with_limits(settings: Settings, **limits: object) -> Settings:
    return settings.with_overrides(limits=LimitSettings(**limits))  # type: ignore[arg-type]


def test_zero_means_unlimited(settings: Settings) -> None:
    limiter = build_rate_limiter(with_limits(settings, create_per_minute=0))
    assert isinstance(limiter, Unlimited)
    assert allowed(limiter, 1000) == 1000


def test_memory_limiter_allows_the_allowance_then_refuses(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(5, clock=clock)
    assert allowed(limiter, 8) == 5
    with pytest.raises(RateLimited) as raised:
        limiter.check("create", "1.2.3.4")
    assert 1 <= raised.value.retry_after <= 60
    assert raised.value.status == 429


def test_clients_and_buckets_are_counted_apart(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(2, clock=clock)
    assert allowed(limiter, 3, client="a") == 2
    assert allowed(limiter, 3, client="b") == 2
    assert allowed(limiter, 3, bucket="upload", client="a") == 2


def test_the_window_slides(clock: FakeClock) -> None:
    clock.advance(60 - clock.monotonic() % 60)  # start of a minute
    limiter = MemoryRateLimiter(10, clock=clock)
    assert allowed(limiter, 10) == 10
    clock.advance(60)  # next minute: last minute's 10 still weigh fully
    assert allowed(limiter, 1) == 0
    clock.advance(30)  # half of them have slid out
    assert allowed(limiter, 10) == 5
    clock.advance(120)  # all gone
    assert allowed(limiter, 10) == 10


def test_memory_stays_bounded(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(1, clock=clock)
    for i in range(100):
        limiter.check("create", f"client-{i}")
    clock.advance(180)
    limiter.check("create", "late")
    assert len(limiter._current) + len(limiter._previous) == 1


@pytest.mark.parametrize(
    ("limit", "previous", "current", "elapsed", "expected"),
    [
        (10, 0, 0, 0.0, None),
        (10, 0, 9, 10.0, None),
        (10, 0, 10, 10.0, 50.0),  # this minute is full: wait for the next
        (5, 10, 0, 30.0, 6.0),  # 10 * (1 - 36/60) + 0 + 1 <= 5 first at 36 s
    ],
)
def test_judge_says_how_long_to_wait(
    limit: int, previous: int, current: int, elapsed: float, expected: float | None
) -> None:
    wait = judge(limit, previous, current, elapsed)
    if expected is None:
        assert wait is None
    else:
        assert wait == pytest.approx(expected)


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"steadylink-test:{secrets.token_hex(6)}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_redis_limiter_is_shared_between_hosts(settings: Settings, clock: FakeClock, prefix: str) -> None:
    configured = with_limits(settings, create_per_minute=4, redis_url=REDIS_URL)
    host_a = build_rate_limiter(configured, clock=clock, prefix=prefix)
    host_b = build_rate_limiter(configured, clock=clock, prefix=prefix)
    assert isinstance(host_a, RedisRateLimiter) and isinstance(host_b, RedisRateLimiter)
    assert allowed(host_a, 3) == 3
    host_a.sync()  # what each limiter's thread does a few times a second
    assert allowed(host_b, 1) == 1  # the last of the shared four
    host_b.sync()  # learns host A's three with its own one
    assert allowed(host_b, 3) == 0
    host_a.sync()
    assert allowed(host_a, 1) == 0
    assert allowed(host_b, 2, client="5.6.7.8") == 2
    counted = redis.Redis.from_url(REDIS_URL)
    keys = list(counted.scan_iter(f"{prefix}:*"))
    assert keys and all(0 < counted.ttl(k) <= 120 for k in keys)
    counted.close()


def test_redis_window_moves_with_the_wall_clock(settings: Settings, clock: FakeClock, prefix: str) -> None:
    limiter = build_rate_limiter(
        with_limits(settings, create_per_minute=3, redis_url=REDIS_URL), clock=clock, prefix=prefix
    )
    assert allowed(limiter, 5) == 3
    limiter.sync()  # type: ignore[attr-defined]
    assert allowed(limiter, 5) == 0
    clock.advance(120)
    assert allowed(limiter, 5) == 3


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_redis_down_fails_open_with_a_warning(
    settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    down = with_limits(settings, create_per_minute=3, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    limiter = build_rate_limiter(down, clock=clock)
    assert isinstance(limiter, RedisRateLimiter)
    with caplog.at_level(logging.WARNING, logger="steadylink.web.ratelimit"):
        limiter.check("create", "1.2.3.4")  # allowed, not an error
        limiter.check("create", "1.2.3.4")
        limiter.sync()
        limiter.sync()
    warnings = [r for r in caplog.records if "Redis" in r.getMessage()]
    assert len(warnings) == 1  # said once, not on every sync
    # Meanwhile this process still limits on its own.
    assert allowed(limiter, 5) == 1


def test_a_check_never_waits_for_redis(settings: Settings, clock: FakeClock) -> None:
    """A Redis that accepts but never answers holds the sync thread only."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        limiter = build_rate_limiter(
            with_limits(settings, create_per_minute=100, redis_url=f"redis://127.0.0.1:{port}/0"), clock=clock
        )
        started = time.monotonic()
        assert allowed(limiter, 50) == 50
        assert time.monotonic() - started < 0.2  # 50 checks, no round trip among them


def test_counts_reach_redis_after_an_outage(settings: Settings, clock: FakeClock, prefix: str) -> None:
    limiter = build_rate_limiter(
        with_limits(settings, create_per_minute=100, redis_url=REDIS_URL), clock=clock, prefix=prefix
    )
    assert isinstance(limiter, RedisRateLimiter)
    real = limiter.redis
    limiter.redis = redis.Redis(port=closed_port(), socket_connect_timeout=0.2)
    limiter.check("create", "9.9.9.9")
    limiter.sync()  # fails: the count stays here
    assert not list(real.scan_iter(f"{prefix}:*"))
    limiter.redis = real
    limiter.check("create", "9.9.9.9")
    limiter.sync()
    [key] = list(real.scan_iter(f"{prefix}:*"))
    assert int(real.get(key) or 0) == 2
