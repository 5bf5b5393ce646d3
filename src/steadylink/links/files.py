"""Uploaded files, stored content-addressed under ``<data_dir>/files``.

A file is written to a temporary name while it streams in, hashed on the way,
and renamed to its SHA-256 only when complete: a half-uploaded file never
has a name a link could point at.

A full disk is the server's fault, not the uploader's: an upload is refused
with ``DiskFull`` (503) before it starts when less than ``reserve_bytes``
would stay free, and when the disk fills (or a file-size limit hits) while it
streams in; the partial file is removed either way.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

from steadylink.errors import DiskFull, InvalidInput, TooLarge
from steadylink.links.model import StoredFile

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


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
            fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
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
                            f"The file is larger than the limit of {self.max_bytes} bytes.",
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
                f"The file is larger than the limit of {self.max_bytes} bytes.", field="file"
            )
        if not data:
            raise InvalidInput("The file is empty.", field="file")
        sha = hashlib.sha256(data).hexdigest()
        final = self.path_of(sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        if not final.exists():
            fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp_name, final)
        return StoredFile(sha, safe_file_name(name), len(data), _safe_type(content_type))


def _disk_error(exc: OSError) -> Exception:
    """A full disk as the 503 it is; any other failure stays what it was (a bug: 500)."""
    if exc.errno in _DISK_FULL:
        return DiskFull(DISK_FULL_MESSAGE)
    return exc


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
