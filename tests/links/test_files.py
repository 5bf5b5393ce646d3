"""Uploaded files: removed with their last link, never under an upload; orphans swept."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from steadylink.links.files import ORPHAN_AGE, FileStore, size_text


def store_file(files: FileStore, data: bytes) -> Path:
    return files.path_of(files.save_bytes(data, name="a.txt").sha256)


def age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_file_no_link_uses_is_removed(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files", max_bytes=1000)
    path = store_file(files, b"hello")
    assert not files.remove_unused(path.name, is_used=lambda: True) and path.exists()
    assert files.remove_unused(path.name, is_used=lambda: False) and not path.exists()


def test_nothing_is_removed_while_an_upload_is_in_flight(tmp_path: Path) -> None:
    """The upload may be about to point a new link at this very file (same content)."""
    files = FileStore(tmp_path / "files", max_bytes=1000)
    path = store_file(files, b"hello")
    age(path, ORPHAN_AGE * 2)

    async def during_an_upload() -> tuple[bool, int]:
        async with files.uploading():
            return (
                files.remove_unused(path.name, is_used=lambda: False),
                files.sweep_orphans(set, now=time.time()),
            )

    assert asyncio.run(during_an_upload()) == (False, 0)
    assert path.exists()


def test_sweeping_removes_old_orphans_only(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files", max_bytes=1000)
    used, orphan, young = (store_file(files, data) for data in (b"used", b"orphan", b"young"))
    temp = files.root / ".upload-abandoned"
    temp.write_bytes(b"half")
    for path in (used, orphan, temp):
        age(path, ORPHAN_AGE + 60)
    removed = files.sweep_orphans(lambda: {used.name}, now=time.time())
    assert removed == 2
    assert used.exists() and young.exists()  # young: its create may still be on its way
    assert not orphan.exists() and not temp.exists()


def test_sizes_read_as_the_web_form_shows_them() -> None:
    assert size_text(10 * 1024 * 1024) == "10.0 MB"
    assert size_text(64 * 1024) == "64 KB"
