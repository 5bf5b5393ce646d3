"""New links written off the event loop; those of concurrent requests share a transaction.

A web worker answers its redirects and its API calls on one event loop, so a
store write on that loop stalls every request of the worker for as long as
the write takes: a commit (~90 µs on SQLite), a round trip to PostgreSQL or,
worst, the wait for SQLite's write lock while the compactor folds visits
(0.1 to 1 s). ``LinkWriter.insert`` hands the link to the writer's one thread
and awaits the answer. Links that arrive while a batch is being written go
together into the next one (group commit): one transaction, one commit, for
a burst of creations.

If a batch fails because a row breaks a rule the service did not check, each
of its links is tried again on its own, so the error reaches only the request
it belongs to. If the database does not answer (``StoreError``), every request
of the batch gets that answer at once: trying each link again would make the
last one wait for as many timeouts as the batch has links. The batch's error
is logged here, once; each request gets an error of its own that names no
row, because the driver's text holds the whole statement's parameters — the
other users' URLs, owners and password hashes. Nothing is ever half-written:
each transaction commits whole or not at all.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from steadylink.errors import DiskFull, StoreError
from steadylink.links.model import Link
from steadylink.links.store import Store

MAX_BATCH = 256
_log = logging.getLogger(__name__)


class LinkWriter:
    """Stores new links for one event loop at a time (a web worker's)."""

    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._max_batch = max_batch
        self._pending: list[tuple[Link, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.transactions = 0  # batches committed or tried, for tests and figures

    async def insert(self, link: Link) -> bool:
        """Store ``link``; False if its code (case-folded) was taken."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        self._pending.append((link, answer))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await answer

    def close(self) -> None:
        """Let the thread go once its writes are done (the worker stops; a later insert starts another)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # one thread: SQLite's per-thread connection is opened once and kept
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="link-writer")
        return self._executor

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            # A request cancelled before its turn (its client went away) writes nothing.
            batch = [(link, answer) for link, answer in batch if not answer.done()]
            if not batch:
                continue
            try:
                self.transactions += 1
                results = await loop.run_in_executor(
                    self._thread(), self._store.insert_links, [link for link, _ in batch]
                )
            except StoreError as exc:  # the database does not answer: the same for every link
                _log.error("a batch of %d new links was not stored: %s", len(batch), exc.message)
                for _, answer in batch:
                    _settle(answer, error=_unstored(exc))
                continue
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], error=exc)
                    continue
                await self._one_by_one(batch)
                continue
            for (_, answer), is_new in zip(batch, results, strict=True):
                _settle(answer, result=is_new)

    async def _one_by_one(self, batch: list[tuple[Link, asyncio.Future[bool]]]) -> None:
        loop = asyncio.get_running_loop()
        for link, answer in batch:
            if answer.done():  # cancelled while the batch was out: not its turn yet, so nothing written
                continue
            try:
                self.transactions += 1
                results = await loop.run_in_executor(self._thread(), self._store.insert_links, [link])
            except Exception as exc:
                _settle(answer, error=exc)
            else:
                _settle(answer, result=results[0])


def _unstored(batch_error: StoreError) -> StoreError:
    """One request's share of a batch's failure: what happened, none of the batch's rows."""
    if isinstance(batch_error, DiskFull):
        return DiskFull(batch_error.public_message)  # a fixed sentence: no rows in it
    return StoreError(
        f"The links database did not answer ({type(batch_error.__cause__ or batch_error).__name__}); "
        "the link was not stored. Try again in a moment."
    )


def _settle(
    answer: asyncio.Future[bool], *, result: bool = False, error: BaseException | None = None
) -> None:
    if answer.done():  # its request was cancelled meanwhile; the link stays stored
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(result)
