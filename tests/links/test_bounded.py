"""A silent PostgreSQL (blackholed through a proxy) costs one bounded wait, then fast answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.faults.tcp_proxy import TcpProxy

from steadylink.clock import FakeClock
from steadylink.errors import StoreError
from steadylink.links.bounded import Breaker
from steadylink.links.model import Link, LinkKind
from steadylink.links.sql_store import NOT_ANSWERING, SqlStore, open_store

ANSWER_SECONDS = 0.3


@pytest.fixture
def proxied(postgres_url: str) -> Iterator[tuple[SqlStore, TcpProxy]]:
    url = sa.engine.make_url(postgres_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        store = open_store(
            url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
            answer_seconds=ANSWER_SECONDS,
        )
        yield store, proxy
        store.close()


def _link(code: str) -> Link:
    now = FakeClock().now()
    return Link(
        code=code, kind=LinkKind.URL, url="https://example.com/", file=None, created_at=now,
        updated_at=now, expires_at=None, max_visits=None, visits=0, is_disabled=False,
        password_hash=None, owner=None,
    )


def _timed_failure(call: object) -> tuple[float, str]:
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        call()  # type: ignore[operator]
    return time.monotonic() - started, caught.value.message


def test_a_silent_database_answers_within_the_bound_then_at_once(
    proxied: tuple[SqlStore, TcpProxy],
) -> None:
    store, proxy = proxied
    store.insert_links([_link("bh1")])
    assert store.get_link("bh1") is not None
    proxy.blackhole()
    waited, message = _timed_failure(lambda: store.get_link("bh1"))
    assert ANSWER_SECONDS <= waited < ANSWER_SECONDS + 0.5
    assert message == NOT_ANSWERING  # no SQL, parameters, host or driver text
    # every other call now fails at once instead of waiting its own bound
    for call in (lambda: store.get_link("bh1"), lambda: store.list_links(), lambda: store.count_links()):
        waited, message = _timed_failure(call)
        assert waited < 0.05 and message == NOT_ANSWERING
    proxy.restore()
    store.ping()  # the probe tries, finds the database back, and closes the breaker
    assert not store.breaker.is_open
    assert store.get_link("bh1") is not None


def test_a_write_into_the_silence_is_bounded_too(proxied: tuple[SqlStore, TcpProxy]) -> None:
    store, proxy = proxied
    store.ping()
    proxy.blackhole()
    waited, _ = _timed_failure(lambda: store.insert_links([_link("bh2")]))
    assert waited < ANSWER_SECONDS + 0.5
    proxy.restore()
    store.ping()
    store.insert_links([_link("bh3")])
    assert store.get_link("bh3") is not None


def test_the_breaker_lets_calls_try_again_after_a_while() -> None:
    now = [0.0]
    breaker = Breaker(5.0, clock=lambda: now[0])
    assert breaker.allows()
    breaker.failed()
    assert not breaker.allows() and breaker.allows(probe=True)
    now[0] = 5.0
    assert breaker.allows()  # one may try; its failure re-opens, its answer closes
    breaker.answered()
    assert not breaker.is_open and breaker.allows()


def test_a_schema_that_lacks_a_column_is_named_not_called_silent(tmp_path: Path) -> None:
    # A newer release's destructive migration (or a bug) is a mismatch to name:
    # calling it "not answering" hid the column from the deploy that had to say it.
    from steadylink.links.migrate import upgrade_to_head

    store = open_store(f"sqlite:///{tmp_path / 'links.db'}")
    upgrade_to_head(store.engine)
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX IF EXISTS ix_links_owner"))
        conn.execute(sa.text("ALTER TABLE links DROP COLUMN owner"))
    with pytest.raises(sa.exc.OperationalError, match="owner"):
        store.list_links(limit=10, offset=0)
    assert not store.breaker.is_open
    store.close()


def test_opening_a_connection_to_a_silent_database_is_bounded_too(
    proxied: tuple[SqlStore, TcpProxy],
) -> None:
    # libpq will not give up a connect in under 2 s; a request must not wait that
    store, proxy = proxied
    store.ping()
    store.engine.dispose()  # no connection left in the pool: the next call must connect
    proxy.blackhole()
    waited, message = _timed_failure(lambda: store.get_link("bh4"))
    assert waited < ANSWER_SECONDS + 0.5
    assert message == NOT_ANSWERING
    assert store.breaker.is_open  # a silent connect opens the breaker like a silent answer
    proxy.restore()
    store.ping()
    assert store.get_link("bh4") is None


def test_a_forked_child_connects_through_a_pool_of_its_own(proxied: tuple[SqlStore, TcpProxy]) -> None:
    import os

    store, _ = proxied
    store.ping()  # the parent's pool of connecting threads exists now
    pid = os.fork()
    if pid == 0:  # the child: the parent's threads are not here
        code = 1
        try:
            store.engine.dispose(close=False)
            store.ping()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
