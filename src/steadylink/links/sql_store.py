"""The SQL store: one implementation for SQLite (WAL) and PostgreSQL.

SQLAlchemy Core for everything but the SQLite point lookup and insert, which
go through a plain ``sqlite3`` connection per thread: a lookup costs a few
microseconds that way, several times less than through SQLAlchemy's layers,
and it is what a cache miss waits for.

Every public call is guarded (``_guarded``): a database that cannot do it now
(not answering, locked, its disk full) reaches the caller as one
``StoreError`` with a fixed sentence, the driver's text goes to the log, and a
PostgreSQL that stops answering is waited for in bounded time, once
(``links/bounded.py``).
"""

from __future__ import annotations

import functools
import logging
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg
from psycopg.errors import ConnectionTimeout
from sqlalchemy import (
    Engine,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.elements import ColumnElement

from steadylink.datadir import make_private
from steadylink.errors import DiskFull, NotFound, StoreError
from steadylink.links import bounded, schema
from steadylink.links.bounded import Breaker, NoAnswer
from steadylink.links.codes import code_taken, fold
from steadylink.links.files import DISK_FULL_MESSAGE
from steadylink.links.model import (
    PROBE_OWNER,
    ApiKey,
    Link,
    LinkKind,
    LinkPage,
    LinkStats,
    StoredFile,
    VisitRow,
)
from steadylink.links.plain import plain_clauses
from steadylink.links.store import key_name_taken

_LINK_COLUMNS = (
    "code, kind, url, file_sha256, file_name, file_size, file_content_type, created_at, "
    "updated_at, expires_at, max_visits, visits, is_disabled, password_hash, owner"
)
_KEEP_CHANGES = 10_000
# psycopg's shortest connect timeout (seconds; a ``connect_timeout`` in the URL wins)
PG_CONNECT_TIMEOUT = 2
# How long a call waits for the database's answer unless the caller says otherwise.
DEFAULT_ANSWER_SECONDS = 10.0
_log = logging.getLogger(__name__)
# The visit log and its folding; "?" placeholders (SQLite), "%s" for psycopg.
_LOG_VISITS = "INSERT INTO visit_log (code, day, host, family, is_bot, n) VALUES (?, ?, ?, ?, ?, ?)"
_LOG_BOUND = (
    "SELECT max(id), count(*), coalesce(sum(n), 0) "
    "FROM (SELECT id, n FROM visit_log ORDER BY id LIMIT ?) AS batch"
)
_SPOOLS_FOLDED = "SELECT name FROM visit_spools WHERE name IN ({})"
_SPOOL_FOLDED = "INSERT INTO visit_spools (name, folded_at) VALUES (?, ?)"
_SPOOLS_FORGET = "DELETE FROM visit_spools WHERE name = ?"
_SPOOLS_EXPIRE = "DELETE FROM visit_spools WHERE folded_at < ?"
# How long a folded file's name is kept when its compactor could not forget it
# (it stopped between deleting the file and its next fold).
_SPOOL_MEMORY = timedelta(days=30)
# Each statement folds the log rows up to a bound. Rows of deleted links go first,
# in one pass (joining links in each of the three inserts cost ~25 % more);
# visit-limited links are counted by take_limited_visit instead.
_COMPACT = (
    "DELETE FROM visit_log WHERE id <= ? AND code NOT IN (SELECT code FROM links)",
    "UPDATE links SET visits = links.visits + batch.n FROM "
    "(SELECT code, sum(n) AS n FROM visit_log WHERE id <= ? GROUP BY code) AS batch "
    "WHERE links.code = batch.code AND links.max_visits IS NULL",
    "INSERT INTO clicks_daily (code, day, count) "
    "SELECT code, day, sum(n) FROM visit_log WHERE id <= ? GROUP BY code, day "
    "ON CONFLICT (code, day) DO UPDATE SET count = clicks_daily.count + excluded.count",
    "INSERT INTO click_referrers (code, host, count) "
    "SELECT code, host, sum(n) FROM visit_log WHERE id <= ? GROUP BY code, host "
    "ON CONFLICT (code, host) DO UPDATE SET count = click_referrers.count + excluded.count",
    "INSERT INTO click_agents (code, family, is_bot, count) "
    "SELECT code, family, is_bot, sum(n) FROM visit_log WHERE id <= ? GROUP BY code, family, is_bot "
    "ON CONFLICT (code, family, is_bot) DO UPDATE SET count = click_agents.count + excluded.count",
    "DELETE FROM visit_log WHERE id <= ?",
)
# One compactor at a time on PostgreSQL (SQLite's write lock does that there).
_COMPACT_LOCK = "SELECT pg_advisory_xact_lock(7402310531)"


# What a client may be told when the store fails: no SQL, driver text or address.
NOT_ANSWERING = StoreError.public_message or "The links database is not answering right now."
# Failures that mean "the database cannot do it now", not a bug of ours.
# PoolTimeout: every connection busy for ``answer_seconds`` (a slow database, or a burst)
_UNAVAILABLE = (
    sqlite3.OperationalError, OperationalError, TimeoutError, PoolTimeout, psycopg.OperationalError,
)  # fmt: skip
# SQLite reports a schema that lacks what a query reads as an OperationalError too;
# that is a mismatch to name (a newer release's migration, a bug), not a silent database.
_SCHEMA_MISMATCH = ("no such column", "no such table", "has no column named")


def _is_schema_mismatch(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc)
    return any(phrase in text for phrase in _SCHEMA_MISMATCH)

_T = TypeVar("_T")
_P = ParamSpec("_P")


def _guarded(method: Callable[Concatenate[SqlStore, _P], _T]) -> Callable[Concatenate[SqlStore, _P], _T]:
    """A store call that fails fast while the database is known silent, and whose
    unavailability reaches the caller as one ``StoreError`` with a fixed message."""
    return _guard(method, probe=False)


def _probe(method: Callable[Concatenate[SqlStore, _P], _T]) -> Callable[Concatenate[SqlStore, _P], _T]:
    """Like ``_guarded``, but always tries: the change-log poll and the readiness check."""
    return _guard(method, probe=True)


def _guard(
    method: Callable[Concatenate[SqlStore, _P], _T], *, probe: bool
) -> Callable[Concatenate[SqlStore, _P], _T]:
    @functools.wraps(method)
    def guarded(self: SqlStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        self._enter(probe=probe)
        try:
            result = method(self, *args, **kwargs)
        except _UNAVAILABLE as exc:
            if _is_schema_mismatch(exc):
                raise
            raise self._failed(exc) from exc
        if self.breaker.is_open:
            self.breaker.answered()
        return result

    return guarded


def _guarded_rows(
    method: Callable[Concatenate[SqlStore, _P], Iterator[_T]],
) -> Callable[Concatenate[SqlStore, _P], Iterator[_T]]:
    """``_guarded`` for a method that yields rows."""

    @functools.wraps(method)
    def guarded(self: SqlStore, /, *args: _P.args, **kwargs: _P.kwargs) -> Iterator[_T]:
        self._enter(probe=False)
        try:
            yield from method(self, *args, **kwargs)
        except _UNAVAILABLE as exc:
            if _is_schema_mismatch(exc):
                raise
            raise self._failed(exc) from exc

    return guarded


def open_store(url: str, *, answer_seconds: float = DEFAULT_ANSWER_SECONDS) -> SqlStore:
    """Open the store at ``url`` (``sqlite:///path`` or ``postgresql://...``).

    ``answer_seconds`` bounds every wait for the database (``links/bounded.py``):
    web workers pass ``store.timeout_seconds``; tools that fold or copy many rows
    keep the longer default.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"{url!r} is not a database URL; use sqlite:///PATH or postgresql://...") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif not parsed.drivername.startswith(("sqlite", "postgresql")):
        raise StoreError(f"Unsupported database {parsed.drivername!r}; use SQLite or PostgreSQL.")
    return SqlStore(parsed.render_as_string(hide_password=False), answer_seconds=answer_seconds)


class SqlStore:
    def __init__(self, url: str, *, answer_seconds: float = DEFAULT_ANSWER_SECONDS) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.answer_seconds = answer_seconds
        self.breaker = Breaker()
        self._local = threading.local()
        if self.is_sqlite:
            path = make_url(url).database or ""
            self._sqlite_path = path
            if path and path != ":memory:":
                Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                _make_database_private(Path(path))
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
            event.listen(self.engine, "connect", _tune_sqlite)
        else:
            connect_args = bounded.connect_args(answer_seconds)
            if "connect_timeout" not in make_url(url).query:
                # libpq waits for ever by default: a host that stopped answering would
                # hold every create (and the readiness probe) for minutes of TCP retries
                connect_args["connect_timeout"] = max(PG_CONNECT_TIMEOUT, math.ceil(answer_seconds))
            # No pre-ping: on a silent database it would add a wait (and a reconnect)
            # to every checkout; a connection that fails is dropped with the whole
            # pool's older ones (SQLAlchemy's disconnect handling) instead.
            # pool_timeout: a call waiting for a free connection is bounded too
            self.engine = create_engine(
                url, pool_size=5, max_overflow=5, pool_timeout=answer_seconds, connect_args=connect_args
            )
            event.listen(self.engine, "do_connect", _bounded_connect(answer_seconds))

    # links -------------------------------------------------------------

    def insert_link(self, link: Link) -> None:
        if not self.insert_links([link])[0]:
            raise code_taken(link.code)

    @_guarded
    def insert_links(self, links: Sequence[Link]) -> list[bool]:
        """Store new links in one transaction; per link, False if its code was taken.

        A taken code (case-folded, also by an earlier link of the same batch)
        skips that link only: ``ON CONFLICT DO NOTHING``, on both databases.
        """
        rows = [_link_row(link) for link in links]
        if not rows:
            return []
        if self.is_sqlite:
            # Plain sqlite3: through SQLAlchemy Core an insert and its change
            # note cost ~270 µs (statement building), half of a whole API create.
            return _insert_links_sqlite(self._sqlite(), rows)
        with self.engine.begin() as conn:
            add = pg_insert(schema.links).on_conflict_do_nothing().returning(schema.links.c.code)
            # RETURNING tells whether the row went in: rowcount is -1 here
            done = [conn.execute(add.values(**row)).first() is not None for row in rows]
            for row, is_new in zip(rows, done, strict=True):
                if is_new:
                    # other workers may hold a negative cache entry for this code
                    _note_change(conn, row["code"])
            return done

    @_guarded
    def get_link(self, code: str) -> Link | None:
        if self.is_sqlite:
            row = (
                self._sqlite()
                .execute(f"SELECT {_LINK_COLUMNS} FROM links WHERE code = ?", (code,))
                .fetchone()
            )
            return _link_from_tuple(row) if row else None
        with self._connect() as conn:
            found = conn.execute(select(*_columns()).where(schema.links.c.code == code)).first()
        return _link_from_tuple(tuple(found)) if found else None

    @_guarded_rows
    def plain_links(self, limit: int, *, most_visited: bool = False) -> Iterator[tuple[str, str]]:
        t = schema.links
        order = (t.c.visits.desc(), t.c.created_at.desc()) if most_visited else (t.c.created_at.desc(),)
        query = select(t.c.code, t.c.url).where(*plain_clauses(t)).order_by(*order).limit(limit)
        with self._connect() as conn:
            for code, url in conn.execution_options(yield_per=10_000).execute(query):
                yield str(code), str(url)

    @_guarded
    def list_links(
        self,
        *,
        text: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        owner: str | None = None,
        protected_urls_of: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> LinkPage:
        t = schema.links
        conditions = [_not_probe()]
        if text:
            pattern = f"%{_escape_like(text.lower())}%"
            url_matches: ColumnElement[bool] = func.lower(t.c.url).like(pattern, escape="\\")
            if protected_urls_of is not None:
                readable = or_(t.c.password_hash.is_(None), t.c.owner == protected_urls_of)
                url_matches = and_(url_matches, readable)
            conditions.append(or_(t.c.code_folded.like(pattern, escape="\\"), url_matches))
        if created_from is not None:
            conditions.append(t.c.created_at >= _to_db(created_from))
        if created_to is not None:
            conditions.append(t.c.created_at < _to_db(created_to))
        if owner is not None:
            conditions.append(t.c.owner == owner)
        query = select(*_columns()).where(*conditions)
        query = query.order_by(t.c.created_at.desc(), t.c.code).limit(limit).offset(offset)
        with self._connect() as conn:
            rows = conn.execute(query).all()
            total = conn.execute(select(func.count()).select_from(t).where(*conditions)).scalar_one()
        return LinkPage([_link_from_tuple(tuple(r)) for r in rows], int(total), limit, offset)

    @_guarded_rows
    def iter_links(self) -> Iterator[Link]:
        query = select(*_columns()).where(_not_probe())
        query = query.order_by(schema.links.c.created_at, schema.links.c.code)
        with self._connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(query):
                yield _link_from_tuple(tuple(row))

    @_guarded
    def replace_link(self, link: Link) -> None:
        row = _link_row(link)
        code = row.pop("code")
        with self._begin() as conn:
            result = conn.execute(update(schema.links).where(schema.links.c.code == code).values(**row))
            if result.rowcount == 0:
                raise NotFound(f"No link with code {code!r}.", field="code")
            _note_change(conn, code)

    @_guarded
    def delete_link(self, code: str) -> bool:
        with self._begin() as conn:
            result = conn.execute(delete(schema.links).where(schema.links.c.code == code))
            if result.rowcount == 0:
                return False
            for table in (schema.clicks_daily, schema.click_referrers, schema.click_agents, schema.visit_log):
                conn.execute(delete(table).where(table.c.code == code))
            _note_change(conn, code)
        return True

    @_guarded
    def is_file_used(self, sha256: str) -> bool:
        t = schema.links
        with self._connect() as conn:
            found = conn.execute(select(t.c.code).where(t.c.file_sha256 == sha256).limit(1)).first()
        return found is not None

    @_guarded
    def file_digests(self) -> set[str]:
        t = schema.links
        with self._connect() as conn:
            rows = conn.execute(select(t.c.file_sha256).where(t.c.file_sha256.is_not(None)).distinct())
            return {str(row[0]) for row in rows}

    @_guarded
    def take_limited_visit(self, code: str) -> bool:
        t = schema.links
        with self._begin() as conn:
            result = conn.execute(
                update(t)
                .where(t.c.code == code)
                .where(or_(t.c.max_visits.is_(None), t.c.visits < t.c.max_visits))
                .values(visits=t.c.visits + 1)
            )
            if result.rowcount == 1:
                # a limited link that just reached its limit must leave every cache
                _note_change(conn, code)
            return bool(result.rowcount == 1)

    @_guarded
    def fold_visits(
        self, names: Sequence[str], visits: Sequence[VisitRow], *, at: datetime, forget: Sequence[str] = ()
    ) -> set[str]:
        if self.is_sqlite:
            conn = self._sqlite()
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # the write lock: one fold at a time
                now, oldest = _sqlite_time(_to_db(at)), _sqlite_time(_to_db(at - _SPOOL_MEMORY))
                return _fold_visits(conn.cursor(), "?", names, visits, now, forget, oldest)
        with self._begin() as sa_conn:
            raw = sa_conn.connection.driver_connection
            with raw.cursor() as cursor:
                cursor.execute(_COMPACT_LOCK)
                return _fold_visits(cursor, "%s", names, visits, at, forget, at - _SPOOL_MEMORY)

    @_guarded
    def compact_visits(self, batch: int = 50_000) -> int:
        compacted = 0
        while True:
            rows, visits = self._compact_batch(batch)
            compacted += visits
            if rows < batch:
                return compacted

    @_guarded
    def checkpoint(self) -> None:
        """Copy the WAL back into the database file (SQLite; PASSIVE: never waits for readers)."""
        if self.is_sqlite:
            self._sqlite().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _compact_batch(self, batch: int) -> tuple[int, int]:
        if self.is_sqlite:
            conn = self._sqlite()
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading the bound
                return _fold_log(conn.cursor(), "?", batch)
        with self._begin() as sa_conn:
            raw = sa_conn.connection.driver_connection
            with raw.cursor() as cursor:
                cursor.execute(_COMPACT_LOCK)
                return _fold_log(cursor, "%s", batch)

    @_guarded
    def link_stats(self, code: str) -> LinkStats:
        link = self.get_link(code)
        if link is None:
            raise NotFound(f"No link with code {code!r}.", field="code")
        with self._connect() as conn:
            per_day = {
                r[0]: int(r[1])
                for r in conn.execute(
                    select(schema.clicks_daily.c.day, schema.clicks_daily.c.count)
                    .where(schema.clicks_daily.c.code == code)
                    .order_by(schema.clicks_daily.c.day)
                )
            }
            referrers = {
                r[0]: int(r[1])
                for r in conn.execute(
                    select(schema.click_referrers.c.host, schema.click_referrers.c.count)
                    .where(schema.click_referrers.c.code == code)
                    .order_by(schema.click_referrers.c.count.desc())
                )
            }
            agent_rows = conn.execute(
                select(
                    schema.click_agents.c.family,
                    schema.click_agents.c.is_bot,
                    schema.click_agents.c.count,
                ).where(schema.click_agents.c.code == code)
            ).all()
        agents: Counter[str] = Counter()
        bots = humans = 0
        for family, is_bot, count in agent_rows:
            agents[family] += int(count)
            if is_bot:
                bots += int(count)
            else:
                humans += int(count)
        return LinkStats(
            code=code,
            total=link.visits,
            per_day=per_day,
            referrers=referrers,
            agents=dict(agents.most_common()),
            bots=bots,
            humans=humans,
        )

    @_guarded
    def sample_codes(self, n: int) -> list[str]:
        total = self.count_links()
        if total == 0 or n <= 0:
            return []
        step = max(total // n, 1)
        t = schema.links
        with self._connect() as conn:
            # visit-limited links change answer as they are visited: not comparable
            query = select(t.c.code).where(t.c.max_visits.is_(None), _not_probe()).order_by(t.c.code)
            rows = conn.execute(query).scalars()
            return [code for i, code in enumerate(rows) if i % step == 0][:n]

    @_guarded
    def count_links(self) -> int:
        with self._connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.links)).scalar_one())

    # cache invalidation --------------------------------------------------

    @_probe
    def invalidations_since(self, seq: int) -> tuple[int, list[str]]:
        rows = self.changes_since(seq)
        if not rows:
            return seq, []
        return rows[-1][0], [code for _, code in rows]

    @_probe
    def changes_since(self, seq: int) -> list[tuple[int, str]]:
        t = schema.link_changes
        if self.is_sqlite:
            rows = (
                self._sqlite()
                .execute("SELECT seq, code FROM link_changes WHERE seq > ? ORDER BY seq", (seq,))
                .fetchall()
            )
        else:
            with self._connect() as conn:
                rows = conn.execute(select(t.c.seq, t.c.code).where(t.c.seq > seq).order_by(t.c.seq)).all()
        return [(int(r[0]), str(r[1])) for r in rows]

    # API keys --------------------------------------------------------------

    @_guarded
    def insert_key(self, key: ApiKey, key_hash: str) -> None:
        try:
            with self._begin() as conn:
                conn.execute(
                    insert(schema.api_keys).values(
                        id=key.id,
                        name=key.name,
                        role=key.role,
                        prefix=key.prefix,
                        key_hash=key_hash,
                        created_at=_to_db(key.created_at),
                        revoked_at=_to_db(key.revoked_at) if key.revoked_at else None,
                    )
                )
        except IntegrityError as exc:
            # the index of active names (two creates of one name at the same instant)
            if "ux_api_keys_active_name" in str(exc) or "api_keys.name" in str(exc):
                raise key_name_taken(key.name) from None
            raise

    @_guarded
    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        t = schema.api_keys
        with self._connect() as conn:
            row = conn.execute(select(*_key_columns()).where(t.c.key_hash == key_hash)).first()
        return _key_from_row(tuple(row)) if row else None

    @_guarded
    def list_keys(self) -> list[ApiKey]:
        t = schema.api_keys
        with self._connect() as conn:
            rows = conn.execute(select(*_key_columns()).order_by(t.c.created_at)).all()
        return [_key_from_row(tuple(r)) for r in rows]

    @_guarded
    def revoke_key(self, key_id: str, at: datetime) -> bool:
        t = schema.api_keys
        with self._begin() as conn:
            result = conn.execute(
                update(t).where(t.c.id == key_id, t.c.revoked_at.is_(None)).values(revoked_at=_to_db(at))
            )
            return bool(result.rowcount == 1)

    # health ----------------------------------------------------------------

    @_probe
    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        for name in ("sqlite", "appender"):
            conn = getattr(self._local, name, None)
            if conn is not None:
                conn.close()
                setattr(self._local, name, None)
        self.engine.dispose()

    # internals -------------------------------------------------------------

    def _sqlite(self) -> sqlite3.Connection:
        """This thread's plain sqlite3 connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "sqlite", None)
        if conn is None:
            conn = sqlite3.connect(self._sqlite_path, check_same_thread=False, timeout=10)
            _tune_sqlite(conn, None)
            self._local.sqlite = conn
        return conn

    def _connect(self) -> Any:
        return self.engine.connect()

    def _begin(self) -> Any:
        return self.engine.begin()

    def _enter(self, *, probe: bool) -> None:
        if not self.breaker.allows(probe=probe):
            raise StoreError(NOT_ANSWERING)

    def _failed(self, exc: BaseException) -> StoreError:
        """The one answer a caller gets; what happened goes to the log only."""
        cause = getattr(exc, "orig", None) or exc
        if isinstance(cause, NoAnswer | ConnectionTimeout):
            if not self.breaker.is_open:
                _log.warning("the links database stopped answering (%s); failing fast", cause)
            self.breaker.failed()
        else:
            _log.warning("links database call failed: %s: %s", type(cause).__name__, cause)
            if "disk is full" in str(cause) or "No space left" in str(cause):
                return DiskFull(DISK_FULL_MESSAGE)
        return StoreError(NOT_ANSWERING)


def _fold_visits(
    cursor: Any, mark: str, names: Sequence[str], visits: Sequence[VisitRow],
    folded_at: Any, forget: Sequence[str], oldest: Any,
) -> set[str]:  # fmt: skip
    """Inside the fold's locked transaction: log the files' visits and fold the whole log,
    unless one of the files was folded already (then nothing but the forgetting happens)."""
    cursor.execute(_SPOOLS_EXPIRE.replace("?", mark), (oldest,))
    cursor.executemany(_SPOOLS_FORGET.replace("?", mark), [(name,) for name in forget])
    if not names:
        return set()
    cursor.execute(_SPOOLS_FOLDED.format(", ".join([mark] * len(names))), list(names))
    already = {str(row[0]) for row in cursor.fetchall()}
    if already:
        return already
    cursor.executemany(_LOG_VISITS.replace("?", mark), visits)
    cursor.executemany(_SPOOL_FOLDED.replace("?", mark), [(name, folded_at) for name in names])
    _fold_log(cursor, mark, None)
    return set()


def _fold_log(cursor: Any, mark: str, batch: int | None) -> tuple[int, int]:
    """Fold the oldest ``batch`` rows of the visit log (all when None): (rows, visits)."""
    cursor.execute(_LOG_BOUND.replace("?", mark), (batch if batch is not None else 2**62,))
    bound, rows, visits = cursor.fetchone()
    if rows:
        for sql in _COMPACT:
            cursor.execute(sql.replace("?", mark), (bound,))
    return int(rows), int(visits)


def _bounded_connect(answer_seconds: float) -> Callable[..., Any]:
    """SQLAlchemy's ``do_connect`` hook: connections of ``BoundedConnection``'s kind,
    opened within ``answer_seconds`` like every other wait for the database."""
    connection_class = bounded.bounded_connection_class(answer_seconds)

    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        return bounded.connect_within(lambda: connection_class.connect(*cargs, **cparams), answer_seconds)

    return connect


def _tune_sqlite(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _note_change(conn: Any, code: str) -> None:
    result = conn.execute(insert(schema.link_changes).values(code=code, at=_to_db(datetime.now(UTC))))
    seq = result.inserted_primary_key[0] if result.inserted_primary_key else None
    if seq is not None and seq % 1000 == 0:
        conn.execute(delete(schema.link_changes).where(schema.link_changes.c.seq < seq - _KEEP_CHANGES))


def _make_database_private(path: Path) -> None:
    """The database file (and its WAL) 0600, new or left readable by an older version."""
    if not path.exists():
        path.touch(mode=0o600)  # before SQLite creates it with the process's umask
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        make_private(path.with_name(name))


def _columns() -> list[Any]:
    t = schema.links
    return [t.c[name.strip()] for name in _LINK_COLUMNS.split(",")]


def _key_columns() -> list[Any]:
    t = schema.api_keys
    return [t.c.id, t.c.name, t.c.role, t.c.prefix, t.c.created_at, t.c.revoked_at]


def _not_probe() -> Any:
    """Leave out the guard's probe links (``PROBE_OWNER``); NULL owners are kept."""
    owner = schema.links.c.owner
    return or_(owner.is_(None), owner != PROBE_OWNER)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _to_db(value: datetime) -> datetime:
    """Timestamps are stored as UTC; SQLite keeps them naive, PostgreSQL as timestamptz."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _from_db(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        # SQLite keeps naive UTC text; parsing it with its zone is 4x cheaper
        # than datetime.replace, and this runs on every cache miss.
        return datetime.fromisoformat(value + "+00:00")
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _link_row(link: Link) -> dict[str, Any]:
    f = link.file
    return {
        "code": link.code,
        "code_folded": fold(link.code),
        "kind": link.kind.value,
        "url": link.url,
        "file_sha256": f.sha256 if f else None,
        "file_name": f.name if f else None,
        "file_size": f.size if f else None,
        "file_content_type": f.content_type if f else None,
        "created_at": _to_db(link.created_at),
        "updated_at": _to_db(link.updated_at),
        "expires_at": _to_db(link.expires_at) if link.expires_at else None,
        "max_visits": link.max_visits,
        "visits": link.visits,
        "is_disabled": link.is_disabled,
        "password_hash": link.password_hash,
        "owner": link.owner,
    }


def _insert_links_sqlite(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> list[bool]:
    """``insert_links`` on SQLite: the rows and their change notes in one transaction.

    Same rows as the SQLAlchemy path: timestamps as SQLAlchemy's SQLite text
    (naive UTC, always six fraction digits, so text order is time order), and
    the change log trimmed as ``_note_change`` does.
    """
    columns = ", ".join(rows[0])
    marks = ", ".join(["?"] * len(rows[0]))
    add = f"INSERT INTO links ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    at = _sqlite_time(_to_db(datetime.now(UTC)))
    with conn:
        done = [conn.execute(add, _sqlite_values(row)).rowcount == 1 for row in rows]
        for row, is_new in zip(rows, done, strict=True):
            if not is_new:
                continue
            # other workers may hold a negative cache entry for this code
            noted = conn.execute("INSERT INTO link_changes (code, at) VALUES (?, ?)", (row["code"], at))
            seq = noted.lastrowid
            if seq is not None and seq % 1000 == 0:
                conn.execute("DELETE FROM link_changes WHERE seq < ?", (seq - _KEEP_CHANGES,))
    return done


def _sqlite_values(row: dict[str, Any]) -> list[Any]:
    return [_sqlite_time(v) if isinstance(v, datetime) else v for v in row.values()]


def _sqlite_time(value: datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")


def _link_from_tuple(row: tuple[Any, ...]) -> Link:
    (
        code,
        kind,
        url,
        sha,
        name,
        size,
        ctype,
        created,
        updated,
        expires,
        max_visits,
        visits,
        disabled,
        password_hash,
        owner,
    ) = row
    stored = StoredFile(sha, name, int(size), ctype) if sha else None
    created_at = _from_db(created)
    updated_at = _from_db(updated)
    assert created_at is not None and updated_at is not None
    return Link(
        code=code,
        kind=LinkKind(kind),
        url=url,
        file=stored,
        created_at=created_at,
        updated_at=updated_at,
        expires_at=_from_db(expires),
        max_visits=int(max_visits) if max_visits is not None else None,
        visits=int(visits),
        is_disabled=bool(disabled),
        password_hash=password_hash,
        owner=owner,
    )


def _key_from_row(row: tuple[Any, ...]) -> ApiKey:
    key_id, name, role, prefix, created, revoked = row
    created_at = _from_db(created)
    assert created_at is not None
    return ApiKey(key_id, name, int(role), prefix, created_at, _from_db(revoked))
