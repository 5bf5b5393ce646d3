"""The ``Store`` protocol: everything the service and the web app need from storage.

Two implementations share one schema (``links/schema.py``, migrated by Alembic):
SQLite (the default, WAL) and PostgreSQL. Methods are synchronous: on SQLite a
point lookup costs 7-10 µs, cheaper than any thread hand-off; on PostgreSQL the
redirect path keeps a cache in front.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from steadylink.errors import Conflict
from steadylink.links.model import ApiKey, Link, LinkPage, LinkStats, VisitRow


def key_name_taken(name: str) -> Conflict:
    """The error for a second active key of one name (the service's check and the store's index)."""
    return Conflict(f"An active key is already named {name!r}; choose another name.", field="name")


class Store(Protocol):
    url: str

    # links
    def insert_link(self, link: Link) -> None:
        """Store a new link; raise Conflict if its code (case-folded) is taken."""
        ...

    def insert_links(self, links: Sequence[Link]) -> list[bool]:
        """Store new links in one transaction; per link, False if its code (case-folded) was taken."""
        ...

    def get_link(self, code: str) -> Link | None:
        """The link with exactly this code, or None."""
        ...

    def plain_links(self, limit: int, *, most_visited: bool = False) -> Iterator[tuple[str, str]]:
        """``(code, url)`` of up to ``limit`` plain links (``links/plain.py``), newest
        first (the cache's warm-up) or most visited first (the edge map's bound)."""
        ...

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
        """Links newest first; ``text`` matches code or URL; ``owner`` restricts.

        With ``protected_urls_of``, ``text`` matches the URL of a password link
        only if that owner's (the caller may not read the others' targets).
        """
        ...

    def iter_links(self) -> Iterator[Link]:
        """Every link, oldest first (exports, backups, samples)."""
        ...

    def replace_link(self, link: Link) -> None:
        """Write back a changed link (same code); raise NotFound if it is gone."""
        ...

    def delete_link(self, code: str) -> bool:
        """Delete a link with its stats; False if there was none."""
        ...

    def is_file_used(self, sha256: str) -> bool:
        """Whether any link serves the uploaded file with this digest."""
        ...

    def file_digests(self) -> set[str]:
        """The digests of every uploaded file some link serves."""
        ...

    def take_limited_visit(self, code: str) -> bool:
        """Atomically count one visit of a link with ``max_visits``.

        True if the visit is allowed (and counted), False if used up."""
        ...

    def fold_visits(
        self, names: Sequence[str], visits: Sequence[VisitRow], *, at: datetime, forget: Sequence[str] = ()
    ) -> set[str]:
        """Fold the visits read from the spool files ``names`` into totals and stats, in one
        transaction that also records the names, so no file is ever folded twice.

        Returns the names that were folded already (by another compactor, or before
        a crash); then nothing is folded. ``forget`` names files deleted since an
        earlier fold: their record is no longer needed. Rows an older release
        left in the visit log are folded too.
        """
        ...

    def compact_visits(self, batch: int = 50_000) -> int:
        """Fold the rows older releases appended to the visit log into totals (links
        without max_visits) and aggregates, oldest first, ``batch`` rows per
        transaction; return how many visits were folded."""
        ...

    def checkpoint(self) -> None:
        """Let the database reclaim its write-ahead log after a fold (SQLite; no-op elsewhere)."""
        ...

    def link_stats(self, code: str) -> LinkStats: ...

    def sample_codes(self, n: int) -> list[str]:
        """Up to ``n`` existing codes, spread over the table (staging's differential check)."""
        ...

    def count_links(self) -> int: ...

    # cache invalidation across worker processes
    def invalidations_since(self, seq: int) -> tuple[int, list[str]]:
        """Codes changed or deleted after ``seq``, and the newest seq."""
        ...

    def changes_since(self, seq: int) -> list[tuple[int, str]]:
        """``(seq, code)`` of every change after ``seq``, oldest first."""
        ...

    # API keys (only hashes are stored)
    def insert_key(self, key: ApiKey, key_hash: str) -> None:
        """Store a new key; raise Conflict if an active key has its name."""
        ...

    def key_by_hash(self, key_hash: str) -> ApiKey | None: ...

    def list_keys(self) -> list[ApiKey]: ...

    def revoke_key(self, key_id: str, at: datetime) -> bool: ...

    # health
    def ping(self) -> None:
        """Raise StoreError if the database does not answer."""
        ...

    def close(self) -> None: ...
