"""One deploy at a time: an exclusive lock on ``<data_dir>/deploy.lock``.

The lock is ``flock(2)`` on the file, so the kernel releases it when the
holding process dies, however it dies: a crashed deploy never leaves a stale
lock behind. The file's body is a JSON note (holder, pid, started_at, message)
so that a refused caller can be told who holds the lock, since when and why.
The note of a dead holder stays in the file but means nothing once the flock
is gone; the next holder overwrites it.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

from steadylink.clock import Clock
from steadylink.errors import Conflict

LOCK_FILE_NAME = "deploy.lock"


@dataclass(frozen=True)
class LockNote:
    """Who holds the deploy lock, since when and why."""

    holder: str
    pid: int
    started_at: datetime
    message: str

    def to_json(self) -> dict[str, object]:
        return {
            "holder": self.holder,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "message": self.message,
        }

    @classmethod
    def from_json(cls, body: dict[str, object]) -> LockNote:
        return cls(
            holder=str(body["holder"]),
            pid=int(str(body["pid"])),
            started_at=datetime.fromisoformat(str(body["started_at"])),
            message=str(body.get("message", "")),
        )

    def describe(self) -> str:
        text = f"deploy lock held by {self.holder} since {self.started_at.isoformat()}"
        return f"{text}: {self.message}" if self.message else text


class DeployLock:
    """A held deploy lock; release it with ``release()`` or by leaving a ``with`` block."""

    def __init__(self, path: Path, fd: int, note: LockNote) -> None:
        self.path = path
        self.note = note
        self._fd: int | None = fd

    @property
    def is_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Clear the note and give the lock up; releasing twice is harmless."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> DeployLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def acquire_lock(data_dir: Path, *, holder: str, message: str, clock: Clock) -> DeployLock:
    """Take the deploy lock without waiting, or raise ``Conflict`` naming its holder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        note = _read_note(fd)
        os.close(fd)
        who = note.describe() if note else "deploy lock held by another process"
        raise Conflict(
            f"{who}. Wait for that deploy to finish, or ask its holder; "
            "the lock frees itself if the holder's process dies."
        ) from None
    note = LockNote(holder=holder, pid=os.getpid(), started_at=clock.now(), message=message)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(note.to_json()).encode(), 0)
        os.fsync(fd)
    except BaseException:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        raise
    return DeployLock(path, fd, note)


def read_lock_holder(data_dir: Path) -> LockNote | None:
    """The note of the lock's current holder, or None when nobody holds it."""
    path = data_dir / LOCK_FILE_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_note(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_note(fd: int) -> LockNote | None:
    # The holder may be between truncate and write; an unreadable note is not an error.
    try:
        raw = os.pread(fd, 64 * 1024, 0)
        body = json.loads(raw.decode())
        return LockNote.from_json(body) if isinstance(body, dict) else None
    except (ValueError, KeyError, OSError):
        return None
