"""Output that never fails its process: a full disk drops and counts lines, then says so."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from tests.faults.disk import fill, small_disk

from steadylink.streams import UnfailingStream, unfailing


def test_a_log_file_on_a_full_disk_drops_lines_and_says_so_once_there_is_room(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        with (disk / "slot0.log").open("w", buffering=1) as raw:  # line-buffered, as a worker's
            log = unfailing(raw)
            log.write("before\n")
            fill(disk)
            for i in range(3):
                log.write(f"lost {i} " + "x" * 8192 + "\n")  # pages it cannot have; no OSError
                log.flush()
            assert isinstance(log, UnfailingStream) and log.dropped_total >= 1
            (disk / "filler").unlink()
            log.write("after\n")
            log.flush()
        text = (disk / "slot0.log").read_text()
    assert text.startswith("before\n")
    assert "earlier writes to this log were lost: No space left on device" in text
    assert text.endswith("after\n")


def test_wrapping_twice_wraps_once_and_the_rest_of_the_stream_shows_through() -> None:
    inner = io.StringIO()
    once = unfailing(inner)
    assert unfailing(once) is once
    assert once.getvalue() == ""  # type: ignore[attr-defined]
    assert once.writable()


def test_a_long_running_command_survives_its_output_going_away() -> None:
    """``protect_std_streams``: a closed stdout/stderr pipe is no reason for a process to die."""
    code = (
        "import os, sys\n"
        "from steadylink.streams import protect_std_streams\n"
        "protect_std_streams()\n"
        "r, w = os.pipe(); os.close(r)\n"  # a pipe whose reader is gone: EPIPE on write
        "sys.stderr = sys.stderr.__class__(os.fdopen(w, 'w'))\n"
        "for i in range(100): print('x' * 1000, file=sys.stderr, flush=True)\n"
        "sys.__stdout__.write('survived\\n')\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "survived\n"
