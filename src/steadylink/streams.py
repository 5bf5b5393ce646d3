"""Output that never fails the process writing it.

The guard starts its workers, compactors and visit reader with their
standard output and error going to files in the data folder
(``run/slot*.log``), and an operator may send ``up``'s output to a file on
that same disk. When the disk fills, every ``write`` there raises
``OSError``; a log line must not turn a request into an empty 500, kill a
supervision thread, or crash a compactor into a restart loop. So a
long-running process writes through ``UnfailingStream``: a write that the
file refuses is dropped and counted, and the first write that succeeds
afterwards is preceded by a line saying how many were dropped.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO, cast


class UnfailingStream:
    """A text stream whose ``write`` and ``flush`` never raise ``OSError``."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self.dropped = 0  # writes refused since the last one that went through
        self.dropped_total = 0
        self._why = ""  # the last refusal's reason

    def write(self, text: str) -> int:
        try:
            if self.dropped:
                self.inner.write(f"({self.dropped} earlier writes to this log were lost: {self._why})\n")
                self.dropped = 0
            self.inner.write(text)
        except OSError as exc:
            self._refused(exc)
        return len(text)

    def flush(self) -> None:
        try:
            self.inner.flush()
        except OSError as exc:
            self._refused(exc)

    def _refused(self, exc: OSError) -> None:
        self.dropped += 1
        self.dropped_total += 1
        self._why = exc.strerror or type(exc).__name__

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ...
        return getattr(self.inner, name)


def unfailing(stream: TextIO) -> TextIO:
    """``stream`` wrapped once (wrapping a wrapped stream returns it as it is)."""
    wrapped: object = stream
    if isinstance(wrapped, UnfailingStream):
        return stream
    return cast(TextIO, UnfailingStream(stream))


def protect_std_streams() -> None:
    """Make this process's ``sys.stdout`` and ``sys.stderr`` unfailing (long-running commands)."""
    sys.stdout = unfailing(sys.stdout)
    sys.stderr = unfailing(sys.stderr)
