"""Uploaded files, stored content-addressed under ``<data_dir>/files``.

A file is written to a temporary name while it streams in, hashed on the way,
and renamed to its SHA-256 only when complete: a half-uploaded file never
has a name a link could point at.

One file may serve several links (same content, same digest), so deleting a
link removes its file only when no other link uses it (``remove_unused``).
An upload holds a shared lock on the folder from its first byte until its
link is stored (``uploading``); removals take the lock exclusively and
*without waiting*: while any upload is in flight they leave the file, so a
file an upload is about to point a new link at is never removed under it.
What is left that way, and the files of creates that failed after their
upload (a taken code, the database down), are orphans: ``sweep_orphans``
(run by the compactor) removes those older than ``ORPHAN_AGE``.

A full disk is the server's fault, not the uploader's: an upload is refused
with ``DiskFull`` (503) before it starts when less than ``reserve_bytes``
would stay free, and when the disk fills (or a file-size limit hits) while it
streams in; the partial file is removed either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from steadylink.errors import DiskFull, InvalidInput, TooLarge
from steadylink.links.model import StoredFile

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


ORPHAN_AGE = 3600.0  # seconds: far longer than any upload and its create take
_TEMP_PREFIX = ".upload-"

# What a full disk (or a file-size limit) looks like to a write.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
DISK_FULL_MESSAGE = DiskFull.public_message


def free_bytes(path: Path) -> int:
    """Free bytes on the disk that holds ``path`` (its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


class FileStore:
    def __init__(self, root: Path, *, max_bytes: int, reserve_bytes: int = 0) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.reserve_bytes = reserve_bytes

    def has_room(self) -> bool:
        return free_bytes(self.root) > self.reserve_bytes

    @contextlib.asynccontextmanager
    async def uploading(self) -> AsyncIterator[None]:
        """Hold the folder's shared lock while a file is stored and its link created."""
        fd = self._open_lock()
        try:
            # off the loop: a removal holds the lock exclusively for a moment
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def remove_unused(self, sha256: str, *, is_used: Callable[[], bool]) -> bool:
        """Remove the file of a deleted link unless a link uses it or an upload is in flight."""
        with self._removing() as may_remove:
            if not may_remove or is_used():
                return False
            path = self.path_of(sha256)
            path.unlink(missing_ok=True)
            return True

    def sweep_orphans(self, in_use: Callable[[], set[str]], *, now: float) -> int:
        """Remove files no link uses, and abandoned temporary files, older than ``ORPHAN_AGE``."""
        if not self.root.is_dir():
            return 0
        cutoff = now - ORPHAN_AGE
        old = [p for p in self.root.glob("*/*") if _is_older(p, cutoff)]
        old += [p for p in self.root.glob(f"{_TEMP_PREFIX}*") if _is_older(p, cutoff)]
        if not old:
            return 0
        used = in_use()
        removed = 0
        with self._removing() as may_remove:
            if not may_remove:
                return 0
            for path in old:
                # checked again under the lock: an upload of the same content renews it
                if (path.name.startswith(_TEMP_PREFIX) or path.name not in used) and _is_older(path, cutoff):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    @contextlib.contextmanager
    def _removing(self) -> Iterator[bool]:
        """The exclusive lock if no upload holds the shared one (True), else False at once."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = self._open_lock()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def _open_lock(self) -> int:
        # the lock is the folder's own: no lock file among the uploads
        self.root.mkdir(parents=True, exist_ok=True)
        return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)

    def path_of(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise InvalidInput("Not a file digest.", field="file")
        return self.root / sha256[:2] / sha256

    async def save_stream(
        self, chunks: AsyncIterator[bytes], *, name: str, content_type: str | None
    ) -> StoredFile:
        if not self.has_room():
            raise DiskFull(DISK_FULL_MESSAGE)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=_TEMP_PREFIX)
        except OSError as exc:
            raise _disk_error(exc) from exc
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(
                            f"The file is larger than the limit of {size_text(self.max_bytes)}.",
                            field="file",
                        )
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise InvalidInput("The file is empty.", field="file")
            sha = digest.hexdigest()
            final = self.path_of(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, final)
        except OSError as exc:
            Path(tmp_name).unlink(missing_ok=True)
            raise _disk_error(exc) from exc
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return StoredFile(sha, safe_file_name(name), size, _safe_type(content_type))

    def save_bytes(self, data: bytes, *, name: str, content_type: str | None = None) -> StoredFile:
        if len(data) > self.max_bytes:
            raise TooLarge(
                f"The file is larger than the limit of {size_text(self.max_bytes)}.", field="file"
            )
        if not data:
            raise InvalidInput("The file is empty.", field="file")
        sha = hashlib.sha256(data).hexdigest()
        final = self.path_of(sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        if not final.exists():
            fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=_TEMP_PREFIX)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp_name, final)
        return StoredFile(sha, safe_file_name(name), len(data), _safe_type(content_type))


def _disk_error(exc: OSError) -> Exception:
    """A full disk as the 503 it is; any other failure stays what it was (a bug: 500)."""
    if exc.errno in _DISK_FULL:
        return DiskFull(DISK_FULL_MESSAGE)
    return exc


def _is_older(path: Path, cutoff: float) -> bool:
    try:
        return path.is_file() and path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def size_text(size: int) -> str:
    """A size as the web form shows it: ``10.0 MB`` (MiB, one decimal), ``64 KB`` below 1 MB."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(size, 1024) // 1024} KB"


def safe_file_name(name: str) -> str:
    """The last path component, without control or path characters; never empty."""
    name = unicodedata.normalize("NFKC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _SAFE_NAME.sub("_", name).strip(" .")
    return name[:200] or "file"


def _safe_type(content_type: str | None) -> str:
    if content_type and re.fullmatch(r"[\w.+-]+/[\w.+-]+", content_type):
        return content_type.lower()
    return "application/octet-stream"
