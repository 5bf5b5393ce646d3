"""Readings of what the probes cannot see: the disk, the database, backups, the guard itself.

Each ``read_*`` returns plain numbers for ``Readings``; the alert rules
decide. None of them blocks for long: the database ping runs on a thread of
its own and counts as "not answering" once it has taken longer than its
timeout (a ping still hanging from before is not started again), and a
database call never runs on an event loop that serves requests.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from steadylink.errors import SteadylinkError
from steadylink.watch.threads import start_named


@dataclass(frozen=True)
class Readings:
    disk_used_percent: float | None = None
    database_ok: bool | None = None
    database_error: str | None = None
    backup_age_seconds: float | None = None
    backup_failed_reason: str | None = None  # set while the latest backup attempt is a failed one
    backup_failed_at: float | None = None
    loop_lag_seconds: float | None = None


def read_disk_used_percent(folder: Path) -> float | None:
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return None
    return round(100.0 * (usage.total - usage.free) / usage.total, 2) if usage.total else None


def read_backup_age(
    backups: Path, *, watching_since: float, now: float, journaled: float | None = None
) -> float:
    """Seconds since the newest verified backup: a file under its final name in ``backups`` is
    verified, and so is one the journal says was written elsewhere (``journaled``, its time).

    With no backup at all, the age counts from when watching began, so a new
    install is not told on its first day.
    """
    newest = max(watching_since, journaled or 0.0)
    try:
        for entry in backups.glob("*.db"):
            newest = max(newest, entry.stat().st_mtime)
    except OSError:
        pass
    return max(0.0, now - newest)


class DatabasePing:
    """``ping`` the links store off the caller's thread, with a timeout."""

    def __init__(self, ping: Callable[[], None], *, timeout: float) -> None:
        self._ping = ping
        self.timeout = timeout
        self._running: threading.Thread | None = None
        self._started = 0.0
        self._result: tuple[bool, str | None] = (True, None)
        self._done = threading.Event()

    def check(self) -> tuple[bool, str | None]:
        if self._running is not None and self._running.is_alive():
            waited = time.monotonic() - self._started
            if waited > self.timeout:
                return False, f"no answer for {waited:.0f}s"
            self._done.wait(self.timeout - waited)
            if not self._done.is_set():
                return False, f"no answer within {self.timeout:g}s"
            return self._result
        self._done.clear()
        self._started = time.monotonic()
        self._running = start_named("watch-db-ping", self._run)
        if not self._done.wait(self.timeout):
            return False, f"no answer within {self.timeout:g}s"
        return self._result

    def _run(self) -> None:
        try:
            self._ping()
            self._result = (True, None)
        except SteadylinkError as exc:
            self._result = (False, exc.message)
        except Exception as exc:  # a driver's error text stays out of alerts: say what kind
            self._result = (False, f"{type(exc).__name__}")
        self._done.set()


class LoopLag:
    """How late a callback runs on the guard's event loop (the ops API's)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._last: float | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def measure(self, timeout: float = 5.0) -> float | None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return None
        ran = threading.Event()
        scheduled = time.monotonic()
        try:
            loop.call_soon_threadsafe(ran.set)
        except RuntimeError:
            return None
        if not ran.wait(timeout):
            return timeout
        return round(time.monotonic() - scheduled, 4)
