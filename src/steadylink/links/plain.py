"""What a *plain* link is — one rule for the worker cache, the store query and the edge map.

A plain link redirects on its URL alone: a URL link, no password, not
disabled, no expiry, no visit limit. Such a link may be answered without
looking at anything else — by a worker from memory (``links/cache.py``), or
by HAProxy from its map (``edge/linkmap.py``) without any release. Every
other link needs the app: a file, a password page, an expiry or a limit that
must be checked at each visit.

The rule is written once, as data (``PLAIN_COLUMNS``): ``is_plain`` applies it
to a ``Link`` and ``plain_conditions`` to the ``links`` table, so the two can
never disagree.
"""

from __future__ import annotations

from typing import Any

from steadylink.links.model import Link, LinkKind

# column (and Link attribute) -> the value a plain link holds there
PLAIN_COLUMNS: tuple[tuple[str, object], ...] = (
    ("kind", LinkKind.URL.value),
    ("password_hash", None),
    ("is_disabled", False),
    ("expires_at", None),
    ("max_visits", None),
)


def is_plain(link: Link) -> bool:
    """A link the redirect can answer from its URL alone, with no other check."""
    return link.url is not None and all(getattr(link, name) == value for name, value in PLAIN_COLUMNS)


def plain_conditions(table: Any) -> list[Any]:
    """The same rule as SQLAlchemy conditions on the ``links`` table."""
    conditions = [table.c.url.is_not(None)]
    for name, value in PLAIN_COLUMNS:
        column = table.c[name]
        conditions.append(column.is_(value) if value is None or isinstance(value, bool) else column == value)
    return conditions
