"""What a *plain* link is: one definition for every place that answers links without asking.

A plain link redirects to its URL with no other check: a URL link, not
disabled, without a password, an expiry or a visit limit. The worker cache
answers these from memory (``links/cache.py``), the store lists them for its
warm-up with the same rule in SQL (``plain_clauses``), and the edge's map of
links HAProxy answers itself holds exactly these. Everything else — files,
password pages, expiring and limited links — needs the app's checks on every
visit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from steadylink.links.model import Link, LinkKind


def is_plain(link: Link) -> bool:
    """A link the redirect can answer from its URL alone, with no other check."""
    return (
        link.kind is LinkKind.URL
        and link.url is not None
        and link.password_hash is None
        and not link.is_disabled
        and link.expires_at is None
        and link.max_visits is None
    )


def plain_clauses(links: Table) -> list[Any]:
    """``is_plain`` as SQL conditions on the ``links`` table (``links/schema.py``)."""
    c = links.c
    return [
        c.kind == LinkKind.URL.value,
        c.url.is_not(None),
        c.password_hash.is_(None),
        c.is_disabled.is_(False),
        c.expires_at.is_(None),
        c.max_visits.is_(None),
    ]
