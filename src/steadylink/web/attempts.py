"""Attempts per key per minute, counted across every worker: in Redis, or in a file.

The password of a protected link must not be guessable by spreading guesses
over workers, hosts or client addresses: the limit is per *link*, and every
worker must see the same count. With ``limits.redis_url`` the count lives in
Redis (every host shares it); without it, in a small SQLite file in the data
dir that every worker of the host shares (one row per key and minute,
``attempts.db``). Both count a sliding minute the way ``web/ratelimit.py``
does (``judge``). These calls wait for I/O: they run in the password check's
thread, never on the event loop.

If Redis does not answer, the file counts instead (a host's own view) and a
warning is logged; a guess is never let through uncounted.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

import redis
from redis.exceptions import RedisError

from steadylink.clock import Clock
from steadylink.web.ratelimit import WINDOW_SECONDS, judge

REDIS_TIMEOUT = 0.25
FILE_TIMEOUT = 1.0  # seconds a worker waits for another's write of the file

log = logging.getLogger(__name__)


class AttemptCounter(Protocol):
    def take(self, key: str) -> float | None:
        """Count one attempt at ``key``; None if allowed, else the seconds to wait."""
        ...


class FileAttempts:
    """Counts in an SQLite file all workers of this host open (WAL, one short write each)."""

    def __init__(self, path: Path, *, per_minute: int, clock: Clock) -> None:
        self.path = path
        self.per_minute = per_minute
        self.clock = clock
        self._local = threading.local()

    def take(self, key: str) -> float | None:
        window, elapsed = divmod(self.clock.now().timestamp(), WINDOW_SECONDS)
        conn = self._connection()
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            current = conn.execute(
                "INSERT INTO attempts (key, window, n) VALUES (?, ?, 1) "
                "ON CONFLICT (key, window) DO UPDATE SET n = n + 1 RETURNING n",
                (key, int(window)),
            ).fetchone()[0]
            previous = conn.execute(
                "SELECT n FROM attempts WHERE key = ? AND window = ?", (key, int(window) - 1)
            ).fetchone()
            if current == 1:  # a new key or minute: forget minutes nobody needs any more
                conn.execute("DELETE FROM attempts WHERE window < ?", (int(window) - 1,))
        return judge(self.per_minute, int(previous[0]) if previous else 0, int(current) - 1, elapsed)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=FILE_TIMEOUT, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS attempts "
                "(key TEXT NOT NULL, window INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (key, window))"
            )
            self.path.chmod(0o600)
            self._local.conn = conn
        return conn


class RedisAttempts:
    """Counts in Redis, shared by every host; the file's count when Redis does not answer."""

    def __init__(
        self, client: redis.Redis, *, per_minute: int, clock: Clock, fallback: AttemptCounter,
        prefix: str = "steadylink:attempts",
    ) -> None:  # fmt: skip
        self.redis = client
        self.per_minute = per_minute
        self.clock = clock
        self.fallback = fallback
        self.prefix = prefix

    def take(self, key: str) -> float | None:
        window, elapsed = divmod(self.clock.now().timestamp(), WINDOW_SECONDS)
        name = f"{self.prefix}:{key}"
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(f"{name}:{int(window)}")
            pipe.expire(f"{name}:{int(window)}", int(2 * WINDOW_SECONDS))
            pipe.get(f"{name}:{int(window) - 1}")
            counted, _, previous = pipe.execute()
        except RedisError as exc:
            log.warning(
                "Redis does not answer (%s); counting password attempts on this host", type(exc).__name__
            )
            return self.fallback.take(key)
        return judge(self.per_minute, int(previous or 0), int(counted) - 1, elapsed)


def build_attempt_counter(
    *, redis_url: str | None, data_dir: Path, per_minute: int, clock: Clock
) -> AttemptCounter:
    on_host = FileAttempts(data_dir / "attempts.db", per_minute=per_minute, clock=clock)
    if not redis_url:
        return on_host
    client = redis.Redis.from_url(
        redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
    )
    return RedisAttempts(client, per_minute=per_minute, clock=clock, fallback=on_host)
