"""Uploads on a full disk: a 503 the server owns, and nothing half-written left behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.faults.disk import fill, small_disk

from steadylink.errors import DiskFull
from steadylink.links.files import FileStore

pytestmark = pytest.mark.anyio


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * 65536
        sent += 65536


async def test_an_upload_that_fills_the_disk_is_refused_and_removed(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        files = FileStore(disk / "files", max_bytes=10 * 1024 * 1024)
        with pytest.raises(DiskFull) as caught:
            await files.save_stream(_chunks(3 * 1024 * 1024), name="big.bin", content_type=None)
        assert caught.value.status == 503 and "disk is full" in caught.value.message
        assert not [p for p in (disk / "files").rglob("*") if p.is_file()]  # no partial file
        small = await files.save_stream(_chunks(65536), name="small.bin", content_type=None)
        assert files.path_of(small.sha256).stat().st_size == 65536  # room again afterwards


async def test_an_upload_is_refused_before_it_starts_when_the_reserve_is_gone(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        fill(disk)
        files = FileStore(disk / "files", max_bytes=1024, reserve_bytes=0)
        with pytest.raises(DiskFull):
            await files.save_stream(_chunks(1), name="a", content_type=None)
