"""Password checks: in threads beside the loop, a few at a time, limited per link."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import RateLimited
from steadylink.links.passwords import hash_password
from steadylink.web.attempts import FileAttempts
from steadylink.web.unlock import PasswordChecks

pytestmark = pytest.mark.anyio


class Recorded:
    """An attempt counter that lets everything through and notes the thread it ran on."""

    def __init__(self) -> None:
        self.threads: set[int] = set()
        self.release = threading.Event()

    def take(self, key: str) -> float | None:
        self.threads.add(threading.get_ident())
        self.release.wait(5)
        return None


async def test_a_check_runs_beside_the_event_loop_not_on_it() -> None:
    attempts = Recorded()
    attempts.release.set()
    checks = PasswordChecks(attempts, threads=1)
    right = hash_password("pw")
    assert await checks.check("c", right, "pw") and not await checks.check("c", right, "no")
    assert attempts.threads and threading.get_ident() not in attempts.threads
    checks.close()


async def test_checks_beyond_the_waiting_room_are_refused_at_once() -> None:
    attempts = Recorded()
    checks = PasswordChecks(attempts, threads=1)
    right = hash_password("pw")
    held = [asyncio.ensure_future(checks.check("c", right, "pw")) for _ in range(checks.max_waiting)]
    await asyncio.sleep(0)  # let them take their places
    with pytest.raises(RateLimited, match="at once"):
        await checks.check("c", right, "pw")
    attempts.release.set()
    assert all(await asyncio.gather(*held))
    checks.close()


def test_the_file_counts_one_link_across_workers(tmp_path: Path) -> None:
    clock = FakeClock()
    one = FileAttempts(tmp_path / "attempts.db", per_minute=2, clock=clock)
    two = FileAttempts(tmp_path / "attempts.db", per_minute=2, clock=clock)
    assert one.take("link:a") is None and two.take("link:a") is None
    wait = one.take("link:a")
    assert wait is not None and 0 < wait <= 60
    assert two.take("link:b") is None  # another link has its own count
    clock.advance(120)
    assert two.take("link:a") is None  # a new minute
    assert oct((tmp_path / "attempts.db").stat().st_mode & 0o777) == "0o600"
