"""A worker's sign of life: its event loop touches a file twice a second.

A worker whose event loop is stuck — a handler that blocks it, a spin in a
C extension — can still accept connections (granian's runtime does that
outside Python), and while the group's other worker answers its health
check nothing else notices: every request sent to the stuck one hangs. So
each worker's loop touches ``<data dir>/run/beats/<pid>`` every
``BEAT_SECONDS``; the guard's supervisor reads the files' ages and kills a
worker whose loop has not turned for a few seconds (granian forks a fresh
one). A release that writes no beats is simply not judged this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

BEAT_SECONDS = 0.5


def beat_dir(data_dir: Path) -> Path:
    return data_dir / "run" / "beats"


async def beat(
    data_dir: Path, pid: int | None = None, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Touch this process's beat file until cancelled; the file goes with it."""
    path = beat_dir(data_dir) / str(pid or os.getpid())
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        while True:
            with contextlib.suppress(OSError):  # a full or read-only disk must not stop a worker
                path.touch()
            await sleep(BEAT_SECONDS)
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def beat_ages(data_dir: Path, pids: Iterable[int], *, now: float | None = None) -> dict[int, float]:
    """Seconds since each pid's last beat, for the pids that beat at all."""
    now = time.time() if now is None else now
    ages = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            ages[pid] = max(now - (beat_dir(data_dir) / str(pid)).stat().st_mtime, 0.0)
    return ages
