"""Short codes: generated ones and the rules for custom ones.

Case rule: codes keep the case they were created with and resolve exactly,
but two codes that differ only in case cannot both exist (``Sale`` is refused
while ``sale`` exists), so a code read aloud or retyped never reaches someone
else's link.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from typing import Protocol

from steadylink.errors import Conflict, InvalidInput

# No look-alikes: 0/O/o, 1/l/I/i are left out.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
MAX_CODE_LENGTH = 64
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

RESERVED = frozenset(
    {
        "api",
        "static",
        "healthz",
        "readyz",
        "metrics",
        "docs",
        "redoc",
        "openapi.json",
        "favicon.ico",
        "robots.txt",
        "s",
        "links",
        "login",
        "logout",
        "admin",
        "ops",
        "status",
        "files",
        "new",
        "about",
        "help",
        "www",
        "assets",
        "stats",
        "p",
        "_",
    }
)


class RandomSource(Protocol):
    def choice(self, seq: str) -> str: ...


class SystemRandom:
    """Cryptographic randomness (``os.urandom``): generated codes must not be guessable.

    Bytes are read ``_POOL_BYTES`` at a time: ``secrets.choice`` makes one system
    call per character, seven per code, which cost more than the rest of
    making one. A pool never outlives a fork, so two worker processes forked
    from one parent never hand out the same bytes.
    """

    _lock: threading.Lock
    _pool: bytes
    _next: int
    _forks: int

    def __init__(self) -> None:
        self._reset()

    def choice(self, seq: str) -> str:
        size = len(seq)
        if not 0 < size <= 256:
            return secrets.choice(seq)
        # Bytes at or above ``limit`` are dropped: ``byte % size`` stays uniform.
        limit = 256 - 256 % size
        if self._forks != _forks:
            self._reset()
        with self._lock:
            while True:
                if self._next >= len(self._pool):
                    self._pool, self._next = os.urandom(_POOL_BYTES), 0
                byte = self._pool[self._next]
                self._next += 1
                if byte < limit:
                    return seq[byte % size]

    def _reset(self) -> None:
        self._lock = threading.Lock()  # a fresh one: a fork may copy a held lock
        self._pool = b""
        self._next = 0
        self._forks = _forks


_POOL_BYTES = 256
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_count_fork)


def generate_code(length: int, rng: RandomSource) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(length))


def fold(code: str) -> str:
    """The form two codes are compared in for uniqueness."""
    return code.lower()


def check_custom_code(code: str) -> str:
    """Return ``code`` if it may be used as a custom code, else raise InvalidInput."""
    if not isinstance(code, str) or code == "":
        raise InvalidInput("The code is empty; leave it out to get a generated one.", field="code")
    if len(code) > MAX_CODE_LENGTH:
        raise InvalidInput(f"The code is longer than {MAX_CODE_LENGTH} characters.", field="code")
    if not CODE_PATTERN.fullmatch(code):
        raise InvalidInput(
            "A code may hold only letters A-Z a-z, digits, '-' and '_'.", field="code"
        )
    if fold(code) in RESERVED:
        raise InvalidInput(f"The code {code!r} is reserved; choose another.", field="code")
    return code


def looks_like_code(path_segment: str) -> bool:
    """Fast check for the redirect path: could this be a stored code?"""
    return CODE_PATTERN.fullmatch(path_segment) is not None


def code_taken(code: str) -> Conflict:
    """The error for a code already in use (by the store and the service alike)."""
    return Conflict(
        f"The code {code!r} is taken (codes differ by more than letter case); choose another.",
        field="code",
    )
