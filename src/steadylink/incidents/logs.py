"""Worker logs kept bounded: ``<run_dir>/*.log`` rotated by size, old pieces dropped by count and age.

Workers write their log through a descriptor opened once with ``O_APPEND``
(release/workers.py), so the guard cannot hand them a new file; it rotates by
copy and truncate instead: ``slot1.log`` is copied to ``slot1.log.1`` (older
pieces shift to ``.2``, ``.3``…) and then truncated, and the workers' next
write lands at the new end. Lines written between the copy and the truncate
(microseconds under load) are lost — the price of not restarting a worker.
At most ``keep`` pieces are kept, none older than ``max_age``: a week of
errors cannot fill the disk. The error hunt reads the pieces too.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

CHECK_EVERY_SECONDS = 30.0


class WorkerLogRotator:
    def __init__(self, run_dir: Path, *, max_bytes: int, keep: int, max_age: timedelta) -> None:
        self.run_dir = run_dir
        self.max_bytes = max_bytes
        self.keep = keep
        self.max_age = max_age
        self._last_check = 0.0

    def rotate_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_check < CHECK_EVERY_SECONDS:
            return
        self._last_check = now
        self.rotate()

    def rotate(self) -> list[Path]:
        """Rotate every log over ``max_bytes``; drop pieces beyond ``keep`` or older than ``max_age``."""
        rotated: list[Path] = []
        if not self.run_dir.is_dir():
            return rotated
        for log in sorted(self.run_dir.glob("*.log")):
            try:
                if log.stat().st_size > self.max_bytes:
                    self._rotate_one(log)
                    rotated.append(log)
                self._drop_old(log)
            except OSError:
                continue  # gone (a retired slot) or a full disk: try again next time
        return rotated

    def _rotate_one(self, log: Path) -> None:
        for n in range(self.keep - 1, 0, -1):
            older = piece(log, n)
            if older.exists():
                os.replace(older, piece(log, n + 1))
        with log.open("rb") as source, piece(log, 1).open("wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
        os.truncate(log, 0)

    def _drop_old(self, log: Path) -> None:
        oldest = time.time() - self.max_age.total_seconds()
        for found in log.parent.glob(log.name + ".*"):
            suffix = found.name[len(log.name) + 1 :]
            if not suffix.isdigit():
                continue
            if int(suffix) > self.keep or found.stat().st_mtime < oldest:
                found.unlink(missing_ok=True)


def piece(log: Path, n: int) -> Path:
    return log.with_name(f"{log.name}.{n}")


def log_pieces(log: Path) -> list[Path]:
    """``slot1.log`` and its rotated pieces, oldest first."""
    pieces = [p for p in log.parent.glob(log.name + ".*") if p.name[len(log.name) + 1 :].isdigit()]
    pieces.sort(key=lambda p: -int(p.name[len(log.name) + 1 :]))
    return [*pieces, log] if log.exists() else pieces
