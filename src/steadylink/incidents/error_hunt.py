"""The error hunt: exceptions grouped by fingerprint, from the workers' logs or any text log.

A fingerprint is, as in Sentry's grouping, the exception type plus the
*normalised in-app frames*: each frame's file (its path cut to what follows
``site-packages/``, the release's tree or the app's root) and function, no
line numbers — so the same bug is one group in every release and on every
line it moves to, and two bugs in one function with different types are two.
When no frame is in-app (the fault is all in a library) all frames count.

Worker logs (``<data dir>/run/*.log`` and their rotated pieces) hold JSON
lines; an error line carries ``exception``, ``where`` (the innermost in-app
``file:line``), ``release``, ``timestamp`` and, from this version on, its
in-app ``frames`` and ``traceback``. Plain tracebacks between them (a worker
that crashed at import) are grouped too and attributed to the release and
time of the JSON line before them. Any other log goes through ``tracebacks``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from steadylink.errors import InvalidInput, NotFound
from steadylink.incidents.logs import log_pieces
from steadylink.incidents.tracebacks import LINE_MAX, Frame, Traceback, find_tracebacks, read_lines

GROUPS_MAX = 10_000
SNIFF_BYTES = 8192
_LIBRARY = ("site-packages/", "dist-packages/", "/lib/python", "<frozen", "/usr/lib/")
_SINCE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass
class ErrorGroup:
    fingerprint: str
    type: str
    message: str
    frames: list[Frame]
    sample: str
    count: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    releases: set[str] = field(default_factory=set)
    where: str | None = None
    source: dict[str, str] = field(default_factory=dict)  # release -> "file:line  code"

    @property
    def title(self) -> str:
        message = self.message if len(self.message) < 120 else self.message[:119] + "…"
        return f"{self.type}: {message}" if message else self.type

    def seen(self, at: str | None, release: str | None) -> None:
        self.count += 1
        if at is not None:
            if self.first_seen is None or at < self.first_seen:
                self.first_seen = at
            if self.last_seen is None or at > self.last_seen:
                self.last_seen = at
        if release:
            self.releases.add(release)

    def source_lines(self) -> list[str]:
        if self.source:
            return [f"{release}: {line}" for release, line in sorted(self.source.items())]
        culprit = innermost_app_frame(self.frames)
        return (
            [f"{short_path(culprit.file)}:{culprit.line}  {culprit.code}"] if culprit and culprit.code else []
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "type": self.type,
            "message": self.message,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "releases": sorted(self.releases),
            "where": self.where,
            "frames": [
                {"file": short_path(f.file), "line": f.line, "function": f.function} for f in self.frames
            ],
            "source": self.source_lines(),
            "sample": self.sample,
        }


def fingerprint(type_name: str, frames: list[Frame]) -> str:
    in_app = [f for f in frames if is_in_app(f.file)] or frames
    parts = [type_name.rsplit(".", 1)[-1]] + [f"{short_path(f.file)}:{f.function}" for f in in_app]
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def is_in_app(path: str) -> bool:
    return not any(marker in path for marker in _LIBRARY)


def short_path(path: str) -> str:
    """``steadylink/web/api.py`` from ``/data/releases/20260101-abc/src/src/steadylink/web/api.py``."""
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if "/steadylink/" in path:
        return "steadylink/" + path.rsplit("/steadylink/", 1)[1]
    for root in ("/var/app/current/", "/app/", "/srv/"):
        if root in path:
            return path.split(root, 1)[1]
    return path.rsplit("/", 1)[-1] if path.startswith("/") else path


def innermost_app_frame(frames: list[Frame]) -> Frame | None:
    in_app = [f for f in frames if is_in_app(f.file)] or frames
    return in_app[-1] if in_app else None


class Grouper:
    """Groups, bounded: past ``GROUPS_MAX`` distinct fingerprints, new ones are only counted."""

    def __init__(self) -> None:
        self.groups: dict[str, ErrorGroup] = {}
        self.overflow = 0

    def add(self, tb: Traceback, *, at: str | None, release: str | None, where: str | None = None) -> None:
        key = fingerprint(tb.type, tb.frames)
        group = self.groups.get(key)
        if group is None:
            if len(self.groups) >= GROUPS_MAX:
                self.overflow += 1
                return
            group = self.groups[key] = ErrorGroup(
                key, tb.type, tb.message, tb.frames, tb.text[:8000], where=where
            )
        group.seen(at, release)

    def ranked(self) -> list[ErrorGroup]:
        return sorted(self.groups.values(), key=lambda g: (-g.count, g.first_seen or ""))


# foreign logs -------------------------------------------------------------------


def hunt_file(path: Path) -> list[ErrorGroup]:
    """Group the tracebacks of a plain-text log of any size (streamed; a binary file is refused).

    The log is read once, front to back, and never sought: it may be a pipe
    (``--file <(eb logs)``, ``--file /dev/stdin``) as well as a file.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder; give the log file in it.", field="file") from None
    except PermissionError:
        raise InvalidInput(f"{path} cannot be read: permission denied.", field="file") from None
    with handle:
        head = handle.read(SNIFF_BYTES)
        if b"\0" in head:
            raise InvalidInput(f"{path} is a binary file, not a text log; nothing to group.", field="file")
        grouper = Grouper()
        for tb in find_tracebacks(read_lines(_chunks(handle, head=head))):
            grouper.add(tb, at=tb.at, release=None)
    return grouper.ranked()


def _chunks(handle: BinaryIO, *, head: bytes = b"") -> Iterator[bytes]:
    """Lines of at most ``LINE_MAX`` bytes: those of ``head`` (already read), then the rest."""
    lines = head.splitlines(keepends=True)
    cut = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
    yield from lines  # shorter than LINE_MAX: head is
    if cut:  # the line the sniff cut in two, made whole again
        yield cut + handle.readline(max(1, LINE_MAX - len(cut)))
    while line := handle.readline(LINE_MAX):
        yield line


# worker logs ----------------------------------------------------------------------


def parse_since(text: str) -> timedelta:
    match = _SINCE.match(text.strip())
    if match is None:
        raise InvalidInput(f"--since {text!r}: give a number and a unit, e.g. 30m, 1h, 7d.", field="since")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def hunt_workers(
    data_dir: Path, *, since: timedelta | None = None, release: str | None = None, now: datetime | None = None
) -> list[ErrorGroup]:
    """Errors in the workers' logs since ``since`` ago, optionally of one release, ranked by count."""
    cutoff = ((now or datetime.now(UTC)) - since).isoformat() if since is not None else None
    grouper = Grouper()
    run_dir = data_dir / "run"
    logs = sorted(run_dir.glob("*.log")) if run_dir.is_dir() else []
    for log in logs:
        for piece in log_pieces(log):
            with piece.open("rb") as handle:
                _group_worker_log(read_lines(_chunks(handle)), grouper, cutoff=cutoff, release=release)
    groups = grouper.ranked()
    for group in groups:
        attach_sources(group, data_dir)
    return groups


def _group_worker_log(
    lines: Iterable[str], grouper: Grouper, *, cutoff: str | None, release: str | None
) -> None:
    context: dict[str, str | None] = {"release": None, "at": None}
    plain: list[str] = []

    def flush_plain() -> None:
        for tb in find_tracebacks(plain):
            if _wanted(context["at"], context["release"], cutoff, release):
                grouper.add(tb, at=context["at"], release=context["release"])
        plain.clear()

    for line in lines:
        if not line.startswith("{"):
            if len(plain) < 5000:
                plain.append(line)
            continue
        flush_plain()
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        context["release"] = record.get("release") or context["release"]
        context["at"] = record.get("timestamp") or context["at"]
        if record.get("event") != "error" or not record.get("exception"):
            continue
        if not _wanted(record.get("timestamp"), record.get("release"), cutoff, release):
            continue
        tb = _traceback_of(record)
        grouper.add(tb, at=record.get("timestamp"), release=record.get("release"), where=record.get("where"))
    flush_plain()


def _wanted(at: str | None, of: str | None, cutoff: str | None, release: str | None) -> bool:
    if release is not None and of != release:
        return False
    return cutoff is None or at is None or _normal(at) >= cutoff


def _normal(at: str) -> str:
    return at.replace("Z", "+00:00")


def _traceback_of(record: dict[str, Any]) -> Traceback:
    frames = [
        Frame(str(f.get("file", "?")), int(f.get("line", 0)), str(f.get("function", "?")))
        for f in record.get("frames") or []
        if isinstance(f, dict)
    ]
    if not frames:
        where = str(record.get("where") or "?")
        file, _, line = where.rpartition(":")
        frames = [Frame(file or where, int(line) if line.isdigit() else 0, "?")]
    text = str(
        record.get("traceback")
        or f"{record['exception']}: {record.get('message', '')} at {record.get('where')}"
    )
    return Traceback(str(record["exception"]), str(record.get("message") or ""), frames, text)


def attach_sources(group: ErrorGroup, data_dir: Path) -> None:
    """The failing line as it reads in each release's own tree (``releases/<id>/src``)."""
    culprit = innermost_app_frame(group.frames)
    if culprit is None or culprit.line <= 0:
        return
    for release in sorted(group.releases):
        code = source_line(data_dir, release, short_path(culprit.file), culprit.line)
        if code is not None:
            group.source[release] = f"{short_path(culprit.file)}:{culprit.line}  {code}"
            culprit.code = culprit.code or code


def source_line(data_dir: Path, release: str, relative: str, line: int) -> str | None:
    if "/" in release or release.startswith(".") or ".." in relative.split("/"):
        return None
    tree = data_dir / "releases" / release / "src"
    for candidate in (tree / "src" / relative, tree / relative):
        try:
            with candidate.open(encoding="utf-8", errors="replace") as handle:
                for number, text in enumerate(handle, start=1):
                    if number == line:
                        return text.strip()
        except OSError:
            continue
    return None
