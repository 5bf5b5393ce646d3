"""Worker logs: rotated by copy-and-truncate past the size, pieces dropped by count and age."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from steadylink.incidents.logs import WorkerLogRotator, log_pieces


def test_a_big_log_is_rotated_and_the_writer_goes_on(tmp_path: Path) -> None:
    log = tmp_path / "slot1.log"
    rotator = WorkerLogRotator(tmp_path, max_bytes=1000, keep=2, max_age=timedelta(days=7))
    with log.open("ab") as writer:  # as a worker holds it: O_APPEND, never reopened
        for round_ in range(4):
            writer.write(f"round {round_}\n".encode() * 200)
            writer.flush()
            assert rotator.rotate() == [log]
        writer.write(b"after\n")
        writer.flush()
    assert log.read_bytes() == b"after\n"  # the writer's next line lands at the new start
    assert [p.name for p in log_pieces(log)] == ["slot1.log.2", "slot1.log.1", "slot1.log"]
    assert (tmp_path / "slot1.log.1").read_bytes().startswith(b"round 3")
    assert rotator.rotate() == []  # small again: left alone


def test_old_pieces_are_dropped(tmp_path: Path) -> None:
    log = tmp_path / "slot2.log"
    log.write_text("now\n")
    old = tmp_path / "slot2.log.1"
    old.write_text("last week\n")
    week_ago = time.time() - 8 * 86400
    os.utime(old, (week_ago, week_ago))
    (tmp_path / "slot2.log.9").write_text("beyond keep\n")
    WorkerLogRotator(tmp_path, max_bytes=10**6, keep=5, max_age=timedelta(days=7)).rotate()
    assert [p.name for p in log_pieces(log)] == ["slot2.log"]
