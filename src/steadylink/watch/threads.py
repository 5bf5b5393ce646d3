"""The watch's threads under their own names in the operating system too.

Python 3.11 names a thread for Python only; the kernel keeps the process's
name for every thread, so ``top -H``, ``ps -L`` and ``/proc/PID/task/*/comm``
cannot tell ``watch-rules`` from the guard's other threads. Each watch thread
names itself (Linux ``prctl(PR_SET_NAME)``, at most 15 bytes), so the cost of
watching can be read per thread (``bench/watch.py`` does). Elsewhere, or if
the call fails, nothing happens.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable
from typing import Any

PR_SET_NAME = 15
_libc: Any = None


def start_named(name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
    """A daemon thread running ``target(*args)``, named ``name`` for Python and for the OS."""

    def run() -> None:
        name_this_thread(name)
        target(*args)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def name_this_thread(name: str) -> None:
    global _libc
    if not sys.platform.startswith("linux"):
        return
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass
