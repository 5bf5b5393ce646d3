"""Password checks of protected links: off the event loop, a few at a time, limited per link.

argon2 is slow on purpose (tens of milliseconds of a core per check). On the
event loop, every check stalled every redirect of the worker; four clients
guessing pushed cached-redirect p99 from 3 to 400 ms. So a check runs in one
of ``limits.password_checks`` threads (argon2 releases the GIL while it
hashes), and at most a few more checks wait for one: beyond that, the caller
gets a 429 at once, without any hashing. Before hashing, the attempt is
counted per *link* across every worker (``web/attempts.py``): past
``limits.password_attempts_per_minute`` the answer is a 429 too, so guessing
costs the server almost nothing and gains the guesser nothing.
"""

from __future__ import annotations

import math

from steadylink.clock import Clock
from steadylink.errors import RateLimited
from steadylink.links.passwords import verify_password
from steadylink.settings import Settings
from steadylink.web.attempts import AttemptCounter, build_attempt_counter
from steadylink.web.offload import Offload

# Checks that may wait for a thread, per thread.
WAITING_PER_THREAD = 4


class PasswordChecks:
    def __init__(self, attempts: AttemptCounter | None, *, threads: int) -> None:
        self.attempts = attempts
        self.threads = threads
        self.max_waiting = threads * (1 + WAITING_PER_THREAD)
        self._offload = Offload(threads=threads, name="password-check")
        self._in_flight = 0

    async def check(self, code: str, password_hash: str, password: str) -> bool:
        """Whether ``password`` opens link ``code``; RateLimited when over a limit."""
        if self._in_flight >= self.max_waiting:
            raise RateLimited("Too many password checks at once here; try again in a second.", retry_after=1)
        self._in_flight += 1
        try:
            return await self._offload.run(self._check, code, password_hash, password)
        finally:
            self._in_flight -= 1

    def _check(self, code: str, password_hash: str, password: str) -> bool:
        if self.attempts is not None:
            wait = self.attempts.take(f"link:{code}")
            if wait is not None:
                seconds = max(math.ceil(wait), 1)
                raise RateLimited(
                    f"Too many password attempts for this link; try again in {seconds} s.",
                    retry_after=seconds,
                )
        return verify_password(password_hash, password)

    def close(self) -> None:
        self._offload.close()


def build_password_checks(settings: Settings, *, clock: Clock) -> PasswordChecks:
    limits = settings.limits
    attempts = None
    if limits.password_attempts_per_minute > 0:
        attempts = build_attempt_counter(
            redis_url=limits.redis_url, data_dir=settings.data_dir,
            per_minute=limits.password_attempts_per_minute, clock=clock,
        )  # fmt: skip
    return PasswordChecks(attempts, threads=limits.password_checks)
