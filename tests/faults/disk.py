"""A small disk of its own for a test: a tmpfs mounted on a temporary directory.

Filling it is the "disk full" fault without touching the machine's disks.
Mounting needs root (CI's containers run as root); elsewhere the test is
skipped with the reason.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(path: Path, *, size: str = "1m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    """Write until the disk that holds ``path`` has no room left.

    Unbuffered on purpose: a buffered file keeps what the last write could not
    fit and raises ENOSPC again when it closes, outside any suppression.
    """
    block = b"\0" * 65536
    with (path / "filler").open("wb", buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(block)
        with contextlib.suppress(OSError):  # the last pages, smaller than a block
            while out.write(b"\0" * 4096):
                pass
