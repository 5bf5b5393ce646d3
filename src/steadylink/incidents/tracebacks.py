"""Python tracebacks found in any plain-text log, read as a stream.

A traceback begins at ``Traceback (most recent call last):``; whatever stood
before that on its line (a timestamp, a host name, ``web: ``) is the log's
*prefix*, and it is stripped from the lines that follow when they start the
same way — digits may differ (the clock moved on), the rest must match. The
traceback ends at its exception line (``KeyError: 'x'``). Chained exceptions
("During handling of the above exception…") keep the last one, which is the
one that escaped.

Memory stays bounded whatever the file: lines are read in binary, at most
``LINE_MAX`` bytes at a time (a file without newlines is read in pieces), and
one traceback keeps at most ``FRAMES_MAX`` frames.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

LINE_MAX = 64 * 1024
FRAMES_MAX = 200
START = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<function>.+))?\s*$')
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}"
)


@dataclass
class Frame:
    file: str
    line: int
    function: str
    code: str = ""


@dataclass
class Traceback:
    type: str
    message: str
    frames: list[Frame] = field(default_factory=list)
    text: str = ""
    at: str | None = None  # the timestamp found in the log's prefix, as written


def read_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded lines of at most ``LINE_MAX`` bytes (undecodable bytes replaced)."""
    for raw in chunks:
        yield raw.decode("utf-8", "replace").rstrip("\r\n")


def find_tracebacks(lines: Iterable[str]) -> Iterator[Traceback]:
    current: _Builder | None = None
    finished: Traceback | None = None  # ended; a chained traceback may still follow
    is_chained = False
    for line in lines:
        if START in line:
            if finished is not None and not is_chained:
                yield finished
            finished, is_chained = None, False
            current = _Builder(line[: line.index(START)])
            continue
        if current is None:
            if finished is not None and line.strip():
                if any(marker in line for marker in _CHAINED):
                    is_chained = True
                elif not is_chained:
                    yield finished
                    finished = None
            continue
        body = current.strip(line)
        if body is None:
            current = None  # another writer's line: this traceback was cut off
            continue
        done = current.add(body)
        if done is not None:
            finished, is_chained, current = done, False, None
    if finished is not None and not is_chained:
        yield finished


class _Builder:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.prefix_pattern = _generalise(prefix)
        self.frames: list[Frame] = []
        self.text: list[str] = [START]
        self.at = _timestamp(prefix)

    def strip(self, line: str) -> str | None:
        if line.startswith(self.prefix):
            return line[len(self.prefix) :]
        match = self.prefix_pattern.match(line)
        return line[match.end() :] if match is not None else None

    def add(self, body: str) -> Traceback | None:
        if len(self.text) < FRAMES_MAX * 3:
            self.text.append(body)
        frame = _FRAME.match(body)
        if frame:
            if len(self.frames) < FRAMES_MAX:
                self.frames.append(
                    Frame(frame["file"], int(frame["line"]), (frame["function"] or "?").strip())
                )
            return None
        code = body.strip()
        if body.startswith((" ", "\t")) or not code:
            # the source line under a frame; 3.11's ^^^ markers are not code
            if self.frames and code and not set(code) <= set("^~ ") and not self.frames[-1].code:
                self.frames[-1].code = code
            return None
        exception = _EXCEPTION.match(code)
        if exception is None or not self.frames:
            return None
        message = (exception["message"] or "")[:1000]
        return Traceback(exception["type"], message, self.frames, "\n".join(self.text), self.at)


def _generalise(prefix: str) -> re.Pattern[str]:
    """The prefix with its digits free: ``Sep 20 19:00:01 web1 app[12]: `` matches later lines."""
    parts = re.split(r"(\d+)", prefix)
    pattern = "".join(r"\d+" if part.isdigit() else re.escape(part) for part in parts)
    return re.compile(pattern)


def _timestamp(prefix: str) -> str | None:
    found = _TIMESTAMP.search(prefix)
    return found.group(0) if found else None
