"""Per-client rate limits: in this process, or shared through Redis.

Both limiters count a sliding window of one minute the cheap way: a counter
per client per minute, and the previous minute's count weighted by how much
of it still lies inside the window. ``limits.create_per_minute`` is the
allowance per client per bucket; 0 turns limiting off.

Redis (``limits.redis_url``) shares the counts across hosts. When Redis does
not answer we fail *open*: availability beats rate limiting. The request is
then judged by this process's own limiter, a warning is logged (at most every
``_WARN_EVERY`` seconds), and Redis is left alone for ``_RETRY_AFTER`` seconds
so a dead Redis does not add a connect timeout to every request.
"""

from __future__ import annotations

import logging
import math
import threading

import redis
from redis.exceptions import RedisError

from steadylink.clock import Clock, SystemClock
from steadylink.errors import RateLimited
from steadylink.settings import Settings
from steadylink.web.context import RateLimiter

WINDOW_SECONDS = 60.0
_REDIS_TIMEOUT = 0.25
_RETRY_AFTER = 5.0
_WARN_EVERY = 30.0

log = logging.getLogger(__name__)


class Unlimited:
    def check(self, bucket: str, client: str) -> None:
        return None


class MemoryRateLimiter:
    """Counts in this process only (one worker's view)."""

    def __init__(self, per_minute: int, *, clock: Clock) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._current: dict[tuple[str, str], int] = {}
        self._previous: dict[tuple[str, str], int] = {}

    def check(self, bucket: str, client: str) -> None:
        window, elapsed = divmod(self.clock.monotonic(), WINDOW_SECONDS)
        key = (bucket, client)
        with self._lock:
            self._roll(int(window))
            previous = self._previous.get(key, 0)
            current = self._current.get(key, 0)
            verdict = judge(self.per_minute, previous, current, elapsed)
            if verdict is None:
                self._current[key] = current + 1
        if verdict is not None:
            raise limited(bucket, verdict)

    def _roll(self, window: int) -> None:
        """Start a new minute; only the last one is kept, so memory stays bounded."""
        if window == self._window:
            return
        self._previous = self._current if window == self._window + 1 else {}
        self._current = {}
        self._window = window


class RedisRateLimiter:
    """Counts shared by every host through Redis: INCR + EXPIRE in one pipeline."""

    def __init__(
        self,
        per_minute: int,
        *,
        client: redis.Redis,
        clock: Clock,
        prefix: str = "steadylink:ratelimit",
    ) -> None:
        self.per_minute = per_minute
        self.redis = client
        self.clock = clock
        self.prefix = prefix
        self.fallback = MemoryRateLimiter(per_minute, clock=clock)
        self._skip_until = -math.inf
        self._warned_at = -math.inf

    def check(self, bucket: str, client: str) -> None:
        if self.clock.monotonic() < self._skip_until:
            self.fallback.check(bucket, client)
            return
        # Wall-clock minutes: every host must agree on where a window starts.
        window, elapsed = divmod(self.clock.now().timestamp(), WINDOW_SECONDS)
        name = f"{self.prefix}:{bucket}:{client}"
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(f"{name}:{int(window)}")
            pipe.expire(f"{name}:{int(window)}", int(2 * WINDOW_SECONDS))
            pipe.get(f"{name}:{int(window) - 1}")
            counted, _, previous = pipe.execute()
        except RedisError as exc:
            self._fail_open(exc)
            self.fallback.check(bucket, client)
            return
        verdict = judge(self.per_minute, int(previous or 0), int(counted) - 1, elapsed)
        if verdict is not None:
            raise limited(bucket, verdict)

    def _fail_open(self, exc: Exception) -> None:
        now = self.clock.monotonic()
        self._skip_until = now + _RETRY_AFTER
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(
                "Redis rate limiter unreachable (%s: %s); limiting per process for now.",
                type(exc).__name__,
                exc,
            )


def judge(limit: int, previous: int, current: int, elapsed: float) -> float | None:
    """Seconds to wait if one more request would exceed ``limit``, else None.

    ``current`` requests were already counted in this minute, ``previous`` in
    the last one, and ``elapsed`` seconds of this minute have passed.
    """
    weight = 1.0 - elapsed / WINDOW_SECONDS
    if previous * weight + current + 1 <= limit:
        return None
    if current + 1 > limit or previous == 0:
        return WINDOW_SECONDS - elapsed
    # Wait until enough of the previous minute has slid out of the window.
    needed_weight = (limit - current - 1) / previous
    return max(WINDOW_SECONDS * (1.0 - needed_weight) - elapsed, 1.0)


def limited(bucket: str, retry_after: float) -> RateLimited:
    wait = max(math.ceil(retry_after), 1)
    return RateLimited(
        f"Too many requests ({bucket}) from this client; try again in {wait} s.",
        retry_after=wait,
    )


def build_rate_limiter(
    settings: Settings, *, clock: Clock | None = None, prefix: str = "steadylink:ratelimit"
) -> RateLimiter:
    """The limiter ``settings.limits`` asks for."""
    per_minute = settings.limits.create_per_minute
    clock = clock or SystemClock()
    if per_minute == 0:
        return Unlimited()
    if settings.limits.redis_url:
        client = redis.Redis.from_url(
            settings.limits.redis_url,
            socket_timeout=_REDIS_TIMEOUT,
            socket_connect_timeout=_REDIS_TIMEOUT,
        )
        return RedisRateLimiter(per_minute, client=client, clock=clock, prefix=prefix)
    return MemoryRateLimiter(per_minute, clock=clock)
