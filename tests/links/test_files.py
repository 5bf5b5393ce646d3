"""Uploaded files: removed with their last link, never under an upload, orphans swept;
on a full disk, a 503 the server owns and nothing half-written left behind."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.faults.disk import fill, small_disk

from steadylink.errors import DiskFull
from steadylink.links.files import ORPHAN_AGE, FileStore, size_text


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * 65536
        sent += 65536


@pytest.mark.anyio
async def test_an_upload_that_fills_the_disk_is_refused_and_removed(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        files = FileStore(disk / "files", max_bytes=10 * 1024 * 1024)
        with pytest.raises(DiskFull) as caught:
            await files.save_stream(_chunks(3 * 1024 * 1024), name="big.bin", content_type=None)
        assert caught.value.status == 503 and "disk is full" in caught.value.message
        assert not [p for p in (disk / "files").rglob("*") if p.is_file()]  # no partial file
        small = await files.save_stream(_chunks(65536), name="small.bin", content_type=None)
        assert files.path_of(small.sha256).stat().st_size == 65536  # room again afterwards


@pytest.mark.anyio
async def test_an_upload_is_refused_before_it_starts_when_the_reserve_is_gone(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        fill(disk)
        files = FileStore(disk / "files", max_bytes=1024, reserve_bytes=0)
        with pytest.raises(DiskFull):
            await files.save_stream(_chunks(1), name="a", content_type=None)


def test_the_fault_tiers_fill_leaves_no_room_whatever_was_free_before(tmp_path: Path) -> None:
    """Free space that is not a multiple of its write size once made it raise ENOSPC on close."""
    with small_disk(tmp_path / "disk") as disk:
        (disk / "odd").write_bytes(b"x" * 5000)  # two pages: 1 MiB minus them is no multiple of 64 KiB
        fill(disk)
        assert os.statvfs(disk).f_bavail == 0


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
