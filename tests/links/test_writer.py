"""The link writer: inserts off the event loop, concurrent ones in one transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence

import pytest

from steadylink.clock import FakeClock
from steadylink.errors import StoreError
from steadylink.links.model import Link, LinkKind
from steadylink.links.sql_store import SqlStore
from steadylink.links.writer import LinkWriter


def make(code: str, clock: FakeClock) -> Link:
    return Link(code, LinkKind.URL, f"https://example.com/{code}", None, clock.now(), clock.now())


class Refusing:
    """The real store, but a batch holding the code ``bad`` fails as a whole."""

    def __init__(self, inner: SqlStore) -> None:
        self.inner = inner
        self.batches: list[list[str]] = []

    def insert_links(self, links: Sequence[Link]) -> list[bool]:
        self.batches.append([link.code for link in links])
        if any(link.code == "bad" for link in links):
            raise sqlite3.IntegrityError("refused")  # a row the service let through, the database not
        return self.inner.insert_links(links)


def test_concurrent_inserts_share_one_transaction(store: SqlStore, clock: FakeClock) -> None:
    writer = LinkWriter(store)

    async def main() -> list[bool]:
        return await asyncio.gather(*(writer.insert(make(f"c{i}", clock)) for i in range(50)))

    assert asyncio.run(main()) == [True] * 50
    assert writer.transactions == 1
    assert all(store.get_link(f"c{i}") is not None for i in range(50))
    _, changed = store.invalidations_since(0)
    assert sorted(changed) == sorted(f"c{i}" for i in range(50))  # each noted for other workers
    writer.close()


def test_a_taken_code_is_refused_for_its_own_link_only(store: SqlStore, clock: FakeClock) -> None:
    store.insert_link(make("old", clock))
    writer = LinkWriter(store)

    async def main() -> list[bool]:
        codes = ["new", "old", "twin", "TWIN", "fresh"]
        return await asyncio.gather(*(writer.insert(make(code, clock)) for code in codes))

    # the second "twin" differs by letter case only: taken by the first of the same batch
    assert asyncio.run(main()) == [True, False, True, False, True]
    assert writer.transactions == 1
    assert store.get_link("TWIN") is None and store.get_link("twin") is not None
    writer.close()


def test_a_failed_batch_is_retried_link_by_link(store: SqlStore, clock: FakeClock) -> None:
    refusing = Refusing(store)
    writer = LinkWriter(refusing)  # type: ignore[arg-type]

    async def main() -> list[bool | BaseException]:
        codes = ["a1", "bad", "a2"]
        return await asyncio.gather(*(writer.insert(make(c, clock)) for c in codes), return_exceptions=True)

    first, failed, last = asyncio.run(main())
    assert first is True and last is True
    assert isinstance(failed, sqlite3.IntegrityError)  # only the request it belongs to sees the error
    assert refusing.batches == [["a1", "bad", "a2"], ["a1"], ["bad"], ["a2"]]
    assert store.get_link("a1") and store.get_link("a2") and store.get_link("bad") is None
    writer.close()


class Down:
    """A database that does not answer: every batch fails with a StoreError."""

    def __init__(self) -> None:
        self.batches = 0

    def insert_links(self, links: Sequence[Link]) -> list[bool]:
        self.batches += 1
        raise StoreError("The links database is not answering: OperationalError: timeout")


def test_a_database_that_does_not_answer_fails_the_whole_batch_at_once(clock: FakeClock) -> None:
    """Retried link by link, the last of 50 creates would wait for 50 timeouts."""
    down = Down()
    writer = LinkWriter(down)  # type: ignore[arg-type]

    async def main() -> list[bool | BaseException]:
        inserts = (writer.insert(make(f"d{i}", clock)) for i in range(50))
        return await asyncio.gather(*inserts, return_exceptions=True)

    answers = asyncio.run(main())
    assert all(isinstance(answer, StoreError) for answer in answers)
    assert down.batches == 1
    writer.close()


def test_a_request_cancelled_before_its_turn_writes_nothing(store: SqlStore, clock: FakeClock) -> None:
    writer = LinkWriter(store)

    async def main() -> bool:
        gone = asyncio.create_task(writer.insert(make("gone", clock)))
        kept = asyncio.create_task(writer.insert(make("kept", clock)))
        await asyncio.sleep(0)  # both are waiting for the writer, which has not run yet
        gone.cancel()
        return await kept

    assert asyncio.run(main()) is True
    assert store.get_link("gone") is None and store.get_link("kept") is not None
    writer.close()


def test_the_loop_goes_on_while_sqlite_is_locked(sqlite_store: SqlStore, clock: FakeClock) -> None:
    """The compactor's fold holds SQLite's write lock for up to a second: a create waits
    for it in the writer's thread, and the loop (the worker's redirects) keeps running."""
    writer = LinkWriter(sqlite_store)
    holder = sqlite3.connect(sqlite_store.engine.url.database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a fold takes it

    async def main() -> bool:
        waiting = asyncio.create_task(writer.insert(make("late", clock)))
        turns = 0
        while turns < 200:  # the loop turns while the insert waits for the lock
            await asyncio.sleep(0)
            turns += 1
        assert not waiting.done()
        holder.execute("ROLLBACK")
        return await waiting

    try:
        assert asyncio.run(main()) is True
    finally:
        holder.close()
    assert sqlite_store.get_link("late") is not None
    writer.close()


def test_after_close_a_new_insert_starts_a_new_thread(store: SqlStore, clock: FakeClock) -> None:
    writer = LinkWriter(store)
    assert asyncio.run(writer.insert(make("one", clock))) is True
    writer.close()
    assert asyncio.run(writer.insert(make("two", clock))) is True  # a worker's second lifespan
    writer.close()


@pytest.mark.parametrize("size", [1, 3])
def test_batches_are_capped(store: SqlStore, clock: FakeClock, size: int) -> None:
    writer = LinkWriter(store, max_batch=size)

    async def main() -> list[bool]:
        return await asyncio.gather(*(writer.insert(make(f"k{i}", clock)) for i in range(7)))

    assert asyncio.run(main()) == [True] * 7
    assert writer.transactions == -(-7 // size)
    writer.close()



class Held(Refusing):
    """``Refusing``, whose batches wait until the test lets them go."""

    def __init__(self, inner: SqlStore) -> None:
        super().__init__(inner)
        self.out = threading.Event()
        self.go = threading.Event()

    def insert_links(self, links: Sequence[Link]) -> list[bool]:
        self.out.set()
        self.go.wait(10)
        return super().insert_links(links)


def test_a_request_cancelled_while_its_failed_batch_was_out_writes_nothing(
    store: SqlStore, clock: FakeClock
) -> None:
    """Its batch failed; the retry link by link is its turn again, and it is gone by then."""
    held = Held(store)
    writer = LinkWriter(held)  # type: ignore[arg-type]

    async def main() -> list[bool | BaseException]:
        tasks = [asyncio.create_task(writer.insert(make(code, clock))) for code in ("bad", "gone", "kept")]
        while not held.out.is_set():  # the three are out together, waiting to be let go
            await asyncio.sleep(0.001)
        tasks[1].cancel()  # "gone"'s client goes away
        held.go.set()  # the batch fails: each is tried on its own
        return await asyncio.gather(*tasks, return_exceptions=True)

    failed, gone, kept = asyncio.run(main())
    assert isinstance(failed, sqlite3.IntegrityError)
    assert isinstance(gone, asyncio.CancelledError) and kept is True
    assert held.batches == [["bad", "gone", "kept"], ["bad"], ["kept"]]
    assert store.get_link("gone") is None and store.get_link("kept") is not None
    writer.close()


class DownWithRows:
    """A database that fails a batch with the driver's text: every row's parameters."""

    def insert_links(self, links: Sequence[Link]) -> list[bool]:
        params = ", ".join(f"{link.url!r}" for link in links)
        raise StoreError(f"The links database is not answering: [SQL: INSERT INTO links ...] [parameters: {params}]")


def test_a_failed_batch_hands_no_request_another_users_rows(clock: FakeClock) -> None:
    writer = LinkWriter(DownWithRows())  # type: ignore[arg-type]

    async def main() -> list[bool | BaseException]:
        inserts = (writer.insert(make(f"u{i}", clock)) for i in range(8))
        return await asyncio.gather(*inserts, return_exceptions=True)

    answers = asyncio.run(main())
    for answer in answers:
        assert isinstance(answer, StoreError)
        assert "example.com" not in answer.message and "INSERT" not in answer.message
    writer.close()
