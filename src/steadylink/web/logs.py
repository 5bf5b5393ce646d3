"""JSON logs: one line per request, one per error.

The request line is on the redirect's hot path, so it skips structlog: a dict
built in place, ``json.dumps``, appended to a list, and written to the stream
in one call by the app's background task (every flush interval) or when the
buffer is full. Errors are rarer and go through structlog, configured to
render JSON, written at once. Neither ever raises: lines the stream refuses
(a full disk under ``run/slot*.log``) are dropped and counted in the log
once it takes writes again (``streams.py``).

An error line carries the exception type, its message and ``where``: the
innermost ``file:line`` inside the steadylink package — frames of libraries
are skipped, so the same bug gives the same ``where`` — plus the in-app
``frames`` and the ``traceback`` (its last ``TRACEBACK_MAX`` characters), from
which ``steadylink errors`` groups errors by fingerprint.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

import structlog

from steadylink.streams import unfailing

_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)
_BUFFER_LINES = 512
TRACEBACK_MAX = 8000  # characters of an error's traceback kept in its log line
FRAMES_MAX = 50

# Request ids: a random per-process prefix and a counter — unique, and far
# cheaper than uuid4 on every request.
_ID_PREFIX = os.urandom(6).hex()
_ids = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):x}"


_SAFE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def safe_request_id(given: str | None) -> str:
    """The caller's X-Request-ID if it is a plain token, else a new one."""
    if given is not None and _SAFE_ID.fullmatch(given):
        return given
    return new_request_id()


class RequestLog:
    """Buffered JSON lines; ``enabled`` False (``access_log = false``) drops request lines."""

    def __init__(self, *, release: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.release = release
        self.enabled = enabled
        # never raising: a full disk under the log must not turn a request into an empty 500
        self.stream = unfailing(stream or sys.stderr)
        self._lines: list[str] = []
        self._tail = f'"release": {json.dumps(release)}, "client": '
        self._heads: dict[tuple[str, str, int], str] = {}
        self._encoded: dict[str, str] = {}
        self._errors = structlog.wrap_logger(
            structlog.PrintLogger(file=self.stream),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(),
            ],
        )

    def request(
        self,
        *,
        method: str,
        route: str,
        status: int,
        seconds: float,
        request_id: str,
        client: str,
    ) -> None:
        # An f-string, not json.dumps (~5x the cost): the request id is checked by
        # the caller (safe_request_id), the line's start is made once per method,
        # route and status, and the client is JSON-encoded once and remembered.
        head = self._heads.get((method, route, status))
        if head is None:
            head = self._head(method, route, status)
        self._lines.append(
            f'{head}{seconds * 1000:.3f}, "request_id": "{request_id}", {self._tail}{self._json(client)}}}'
        )
        if len(self._lines) >= _BUFFER_LINES:
            self.flush()

    def _head(self, method: str, route: str, status: int) -> str:
        if len(self._heads) >= 10_000:
            self._heads.clear()
        head = self._heads[(method, route, status)] = (
            f'{{"event": "request", "method": {json.dumps(method)}, "route": {json.dumps(route)}, '
            f'"status": {status}, "duration_ms": '
        )
        return head

    def _json(self, text: str) -> str:
        encoded = self._encoded.get(text)
        if encoded is None:
            if len(self._encoded) >= 10_000:
                self._encoded.clear()
            encoded = self._encoded[text] = json.dumps(text)
        return encoded

    def error(self, exc: BaseException, *, request_id: str, method: str, route: str) -> None:
        self._errors.error(
            "error",
            exception=type(exc).__name__,
            message=str(exc)[:1000],
            where=innermost_app_frame(exc),
            frames=app_frames(exc),
            traceback="".join(traceback.format_exception(exc))[-TRACEBACK_MAX:],
            request_id=request_id,
            release=self.release,
            method=method,
            route=route,
        )

    def event(self, name: str, **fields: Any) -> None:
        """A line about the app itself (start, stop, background failures)."""
        self._errors.info(name, release=self.release, **fields)

    def flush(self) -> None:
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()


def app_frames(exc: BaseException) -> list[dict[str, object]]:
    """The traceback's frames inside the package (file, line, function): the error hunt's fingerprint."""
    frames: list[dict[str, object]] = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(_PACKAGE_DIR):
            relative = frame.filename[len(_PACKAGE_DIR) - len("steadylink") :]
            frames.append({"file": relative, "line": frame.lineno, "function": frame.name})
    return frames[-FRAMES_MAX:]


def innermost_app_frame(exc: BaseException) -> str:
    """``steadylink/web/api.py:42``: the deepest traceback frame inside the package."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(_PACKAGE_DIR):
            relative = frame.filename[len(_PACKAGE_DIR) - len("steadylink") :]
            where = f"{relative}:{frame.lineno}"
    return where or "?"
