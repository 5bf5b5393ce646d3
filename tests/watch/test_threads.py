"""A watch thread carries its name in the operating system too (per-thread CPU can be read)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from steadylink.watch.threads import start_named


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")
def test_the_os_sees_the_threads_name_cut_to_fifteen_bytes() -> None:
    seen: list[str] = []
    done = threading.Event()

    def look() -> None:
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())
        done.set()

    thread = start_named("watch-rules-and-more", look)
    assert done.wait(5)
    thread.join(5)
    assert thread.name == "watch-rules-and-more" and thread.daemon
    assert seen == ["watch-rules-and"]
