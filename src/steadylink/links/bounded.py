"""Every PostgreSQL call gives up in bounded time, and a silent database is noticed once.

A database host that stops answering (a network partition, a stopped
process, a proxy that stops forwarding) is the worst fault a store can have:
a refused connection fails in microseconds, but a silent one lets libpq wait
for ever. Three layers bound it:

- the server cancels a statement after ``statement_timeout`` (a slow query on
  a live server: the connection stays usable);
- TCP keepalives and ``tcp_user_timeout`` let the kernel drop a connection
  whose peer vanished from the network;
- ``BoundedConnection`` waits for each answer at most ``answer_seconds`` on
  the client side (the only bound that holds when something in between keeps
  the TCP connection open but passes nothing on); then it closes the
  connection, so SQLAlchemy drops it from the pool, and raises
  ``NoAnswer``;
- ``connect_within`` bounds opening a connection the same way: libpq will not
  give up a connect in under 2 s, so the connect runs on a small thread pool
  and the caller stops waiting after ``answer_seconds`` (a connection that
  arrives later is closed).

``Breaker`` turns the first ``NoAnswer`` into a fast answer for everyone
else: for ``retry_seconds`` every call fails at once with the same
``StoreError`` instead of waiting its own timeout; then one call may try
again (the worker's change-log poll makes that call every second, in a thread,
so requests never have to).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import psycopg
from psycopg import errors as pg_errors

# libpq keeps the TCP connection itself; these make the kernel notice a dead peer.
KEEPALIVE_IDLE = 5  # seconds without traffic before the first probe
KEEPALIVE_INTERVAL = 2
KEEPALIVE_COUNT = 3


class NoAnswer(psycopg.OperationalError):
    """The database did not answer within the client's bound (the connection is closed)."""


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits at most ``answer_seconds`` for any one answer."""

    answer_seconds: float = 10.0

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        bound = self.answer_seconds if timeout is None else min(timeout, self.answer_seconds)
        try:
            return super().wait(gen, interval=interval, timeout=bound)
        except pg_errors._WaitTimeout:
            # The protocol is mid-exchange: the connection cannot be used again.
            self.pgconn.finish()
            raise NoAnswer(f"no answer within {bound:g} s") from None


# Connects that outlive their caller finish here (each bounded by libpq's own
# connect timeout); a few threads are enough, since the breaker keeps all but
# the probes from connecting to a silent database.
_CONNECT_THREADS = 4
_connecting: ThreadPoolExecutor | None = None
_connecting_lock = threading.Lock()


def _connect_pool() -> ThreadPoolExecutor:
    global _connecting
    with _connecting_lock:
        if _connecting is None:
            _connecting = ThreadPoolExecutor(_CONNECT_THREADS, thread_name_prefix="pg-connect")
        return _connecting


def _forget_pool_after_fork() -> None:
    # a forked child has none of the parent's threads: it makes its own pool
    global _connecting, _connecting_lock
    _connecting = None
    _connecting_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def connect_within(connect: Callable[[], psycopg.Connection[Any]], seconds: float) -> psycopg.Connection[Any]:
    """``connect()``, or ``ConnectionTimeout`` after ``seconds`` (the connect goes on, and is closed)."""
    future = _connect_pool().submit(connect)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        if not future.cancel():
            future.add_done_callback(_close_late)
        raise pg_errors.ConnectionTimeout(f"no connection within {seconds:g} s") from None


def _close_late(future: Future[psycopg.Connection[Any]]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def bounded_connection_class(answer_seconds: float) -> type[BoundedConnection]:
    return type("BoundedConnection", (BoundedConnection,), {"answer_seconds": answer_seconds})


def connect_args(answer_seconds: float) -> dict[str, Any]:
    """libpq parameters: server-side statement timeout, keepalives, TCP user timeout."""
    statement_ms = max(int(answer_seconds * 1000), 1)
    return {
        # timestamps are written as naive UTC: the session must agree
        "options": f"-c timezone=UTC -c statement_timeout={statement_ms}",
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE,
        "keepalives_interval": KEEPALIVE_INTERVAL,
        "keepalives_count": KEEPALIVE_COUNT,
        # sent data unacknowledged this long: the connection is dead
        "tcp_user_timeout": max(int(answer_seconds * 1000), 1000),
    }


class Breaker:
    """Remembers that the database did not answer, so that others fail fast meanwhile.

    Open after a call met no answer; closed again by the next call that gets one.
    While open, a call fails at once for ``retry_seconds``; after that, calls try
    again (and re-open it if they fail). A *probe* (the worker's change-log poll,
    the readiness check, both in threads) always tries, so a web worker notices
    the database's return within a poll interval without a request paying for it.
    """

    def __init__(self, retry_seconds: float = 5.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._open_until = 0.0
        self._is_open = False

    @property
    def is_open(self) -> bool:
        return self._is_open

    def allows(self, *, probe: bool = False) -> bool:
        return probe or not self._is_open or self._clock() >= self._open_until

    def failed(self) -> None:
        self._is_open = True
        self._open_until = self._clock() + self.retry_seconds

    def answered(self) -> None:
        self._is_open = False
