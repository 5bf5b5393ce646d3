"""Per-client rate limits: in this process, or shared through Redis.

Both limiters count a sliding window of one minute the cheap way: a counter
per client per minute, and the previous minute's count weighted by how much
of it still lies inside the window. ``limits.create_per_minute`` is the
allowance per client per bucket; 0 turns limiting off.

Redis (``limits.redis_url``) shares the counts across hosts, synced by a
thread a few times a second: a request is never held waiting for Redis. When
Redis does not answer we fail *open*: availability beats rate limiting. The
requests are then judged by this process's own counts, and a warning is logged
(at most every ``_WARN_EVERY`` seconds).
"""

from __future__ import annotations

import logging
import math
import threading
import time

import redis
from redis.exceptions import RedisError

from steadylink.clock import Clock, SystemClock
from steadylink.errors import RateLimited
from steadylink.settings import Settings
from steadylink.web.context import RateLimiter

WINDOW_SECONDS = 60.0
_REDIS_TIMEOUT = 0.25
SYNC_SECONDS = 0.25
_WARN_EVERY = 30.0
_Key = tuple[str, str, int]  # bucket, client, minute

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
    """Counts shared by every host through Redis, without ever waiting for Redis.

    ``check`` decides from memory: the totals Redis gave at the last sync plus
    this process's requests since. A thread of the limiter syncs every
    ``sync_seconds`` (INCRBY what was counted here, read the totals back), so
    hosts see each other's requests within about that long, and a Redis that
    stops answering holds that thread, never the event loop that serves
    requests. Meanwhile this process goes on counting on its own (fail open to
    a per-process limit), a warning is logged at most every ``_WARN_EVERY``
    seconds, and what was counted reaches Redis once it answers again.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        client: redis.Redis,
        clock: Clock,
        prefix: str = "steadylink:ratelimit",
        sync_seconds: float = SYNC_SECONDS,
    ) -> None:
        self.per_minute = per_minute
        self.redis = client
        self.clock = clock
        self.prefix = prefix
        self.sync_seconds = sync_seconds
        self._lock = threading.Lock()
        self._syncing = threading.Lock()
        self._unsynced: dict[_Key, int] = {}  # counted here, not in Redis yet
        self._known: dict[_Key, int] = {}  # Redis's totals at the last sync
        self._warned_at = -math.inf
        self._thread: threading.Thread | None = None

    def check(self, bucket: str, client: str) -> None:
        # Wall-clock minutes: every host must agree on where a window starts.
        window, elapsed = divmod(self.clock.now().timestamp(), WINDOW_SECONDS)
        now, before = (bucket, client, int(window)), (bucket, client, int(window) - 1)
        with self._lock:
            current = self._known.get(now, 0) + self._unsynced.get(now, 0)
            previous = self._known.get(before, 0) + self._unsynced.get(before, 0)
            verdict = judge(self.per_minute, previous, current, elapsed)
            if verdict is None:
                self._unsynced[now] = self._unsynced.get(now, 0) + 1
        if self._thread is None:
            self._start()
        if verdict is not None:
            raise limited(bucket, verdict)

    def sync(self) -> None:
        """Push this process's counts to Redis and read every host's totals back (a thread's job)."""
        with self._syncing:
            oldest = int(self.clock.now().timestamp() // WINDOW_SECONDS) - 1
            with self._lock:
                pending, self._unsynced = self._unsynced, {}
                keys = [k for k in {*pending, *self._known} if k[2] >= oldest]
            if not keys:
                return
            try:
                pipe = self.redis.pipeline(transaction=False)
                for key in keys:
                    name = f"{self.prefix}:{key[0]}:{key[1]}:{key[2]}"
                    pipe.incrby(name, pending.get(key, 0))
                    pipe.expire(name, int(2 * WINDOW_SECONDS))
                totals = pipe.execute()[::2]
            except RedisError as exc:
                with self._lock:  # counted here still, and pushed at the next sync
                    for key, n in pending.items():
                        if key[2] >= oldest:
                            self._unsynced[key] = self._unsynced.get(key, 0) + n
                self._warn(exc)
                return
            with self._lock:
                self._known = {key: int(total) for key, total in zip(keys, totals, strict=True)}

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._keep_syncing, daemon=True, name="ratelimit-sync")
        self._thread.start()

    def _keep_syncing(self) -> None:
        while True:
            time.sleep(self.sync_seconds)
            try:
                self.sync()
            except Exception as exc:  # never let the thread die
                self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
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
