"""Calls that wait for the outside world run in threads, never on the event loop.

A worker's event loop answers every redirect it serves; one store read that
waits for a silent database (or a Redis that stopped answering) on that loop
would hold every redirect behind it. ``Offload.run`` hands such a call to a
small pool of threads and awaits it. The pool is small on purpose: the store
bounds each call (``links/bounded.py``) and fails fast once it knows the
database is silent, so a few threads are never all held for long.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

_T = TypeVar("_T")
_P = ParamSpec("_P")

THREADS = 4


class Offload:
    def __init__(self, *, threads: int = THREADS, name: str = "store-call") -> None:
        self._threads = threads
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, call: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``call(*args, **kwargs)`` in one of the pool's threads; its result or its error."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix=self._name)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call, *args, **kwargs))

    def close(self) -> None:
        """Let the threads go (the worker stops; a later call starts new ones)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
