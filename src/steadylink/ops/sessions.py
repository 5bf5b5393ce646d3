"""Dashboard sessions: an API key signs in once; a random session id in a cookie stands for it.

Sessions live in the guard's memory (a restarted guard asks to sign in
again) and last ``SESSION_SECONDS``. The cookie is HttpOnly and
SameSite=Strict, Secure when the dashboard is reached over HTTPS; each
session has its own CSRF token, which every form posts back and which is
compared in constant time. The key's secret is never kept, only its name and
role as they were at sign-in; a revoked key's sessions end within
``RECHECK_SECONDS`` (the key is looked up again by id).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from steadylink.clock import Clock
from steadylink.types import Role

COOKIE = "steadylink_ops"
SESSION_SECONDS = 12 * 3600
RECHECK_SECONDS = 30.0
MAX_SESSIONS = 1000


@dataclass
class Session:
    id: str
    csrf: str
    key_id: str
    name: str
    role: Role
    expires: float
    checked: float


class Sessions:
    def __init__(self, clock: Clock, *, is_key_active: Callable[[str], bool]) -> None:
        self.clock = clock
        self.is_key_active = is_key_active
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def start(self, *, key_id: str, name: str, role: Role) -> Session:
        now = self.clock.monotonic()
        session = Session(
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            key_id,
            name,
            role,
            now + SESSION_SECONDS,
            now,
        )
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._drop_expired(now)
                if len(self._sessions) >= MAX_SESSIONS:
                    oldest = min(self._sessions.values(), key=lambda s: s.expires)
                    del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self.clock.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now >= session.expires:
                del self._sessions[session_id]
                return None
            must_check = now - session.checked >= RECHECK_SECONDS
        if must_check:
            if not self.is_key_active(session.key_id):
                self.end(session_id)
                return None
            session.checked = now
        return session

    def end(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _drop_expired(self, now: float) -> None:
        for sid in [s.id for s in self._sessions.values() if now >= s.expires]:
            del self._sessions[sid]


def is_csrf_ok(session: Session, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(session.csrf.encode(), token.encode())
