"""The edge's link map: which plain links HAProxy may answer itself, and how they are written.

HAProxy looks a request's path up in a map file (``/<code> <Location>`` per
line) and answers a hit with the redirect, before any backend is chosen.
Everything the map holds must be safe in three places at once: as a map
file line, as an argument of the runtime API (``set map``) and as a
``Location`` header. So an entry is made only for

- a code the app would answer at that path: 1-64 letters, digits, ``-`` and
  ``_``, not a reserved word (a code made reserved later is never answered
  as a link) — which also keeps spaces, CR/LF, ``%`` and very long keys out;
- a ``Location`` (``links.cache.location_of``: non-ASCII percent-encoded) of
  at most ``MAX_LOCATION`` characters drawn from the characters of a URI
  (RFC 3986: unreserved, reserved and ``%``), starting with ``http://`` or
  ``https://`` — no space, quote, backslash, angle bracket or control
  character, which could end a header, a map line or a runtime command.

A plain link that fails these rules is simply not in the map: the app
answers it, exactly as before. Pure functions only; ``edge/mapsync.py``
feeds them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from steadylink.links.cache import location_of
from steadylink.links.codes import CODE_PATTERN, RESERVED
from steadylink.links.model import Link
from steadylink.links.plain import is_plain

MAX_LOCATION = 4096
_LOCATION = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
# The runtime API splits a command line on spaces and ';' and unescapes '\'.
_RUNTIME_ESCAPES = str.maketrans({";": "\\;"})

MapEntry = tuple[str, str]


def map_key(code: str) -> str | None:
    """The map key for ``code`` (its request path), or None if the edge must not answer it."""
    if not CODE_PATTERN.fullmatch(code) or code.lower() in RESERVED:
        return None
    return "/" + code


def map_entry(code: str, url: str) -> MapEntry | None:
    """``(key, Location)`` for a plain link's code and URL, or None when it stays with the app."""
    key = map_key(code)
    if key is None:
        return None
    location = location_of(url)
    if len(location) > MAX_LOCATION or not _LOCATION.fullmatch(location):
        return None
    return key, location


def entry_of(link: Link | None) -> MapEntry | None:
    """What the map should hold for ``link`` (None: deleted, not plain, or not map-safe)."""
    if link is None or not is_plain(link):
        return None
    assert link.url is not None  # is_plain checked it
    return map_entry(link.code, link.url)


def select_entries(links: Iterable[tuple[str, str]], limit: int) -> Iterator[MapEntry]:
    """Map entries for ``(code, url)`` pairs, up to ``limit``; unsafe ones are skipped."""
    if limit <= 0:
        return
    made = 0
    for code, url in links:
        entry = map_entry(code, url)
        if entry is not None:
            yield entry
            made += 1
            if made >= limit:
                return


def map_lines(entries: Iterable[MapEntry]) -> Iterator[str]:
    """Map file (and ``add map`` payload) lines: ``<key> <Location>\\n``."""
    for key, location in entries:
        yield f"{key} {location}\n"


def write_map_file(path: Path, entries: Iterable[MapEntry]) -> int:
    """Write the whole map atomically (a new file renamed over the old); return its entries.

    HAProxy reads the file at start and at each reload: it never sees half a map.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    hidden = path.with_name(f".{path.name}.new")
    count = 0
    with open(hidden, "w", encoding="ascii", newline="\n") as out:
        for line in map_lines(entries):
            out.write(line)
            count += 1
    os.replace(hidden, path)
    return count


def ensure_map_file(path: Path) -> None:
    """An empty map where there is none yet: HAProxy refuses to start without its file."""
    if not path.exists():
        write_map_file(path, [])


def build_set_map(map_file: Path, entry: MapEntry) -> str:
    key, location = entry
    return f"set map {map_file} {key} {location.translate(_RUNTIME_ESCAPES)}"


def build_add_map(map_file: Path, entries: Iterable[MapEntry], version: int | None = None) -> str:
    """``add map`` with a payload: one command, many lines, each read like a map file line."""
    at = f"@{version} " if version is not None else ""
    return f"add map {at}{map_file} <<\n" + "".join(map_lines(entries))


def build_del_map(map_file: Path, key: str) -> str:
    return f"del map {map_file} {key}"
