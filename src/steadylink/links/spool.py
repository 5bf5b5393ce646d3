"""The visit spool: how visits travel from the workers to the stats, off the redirect path.

A worker keeps each visit as one line of text — code, day, referrer host,
agent family, bot flag, tab-separated — and every
``links.click_flush_seconds`` writes what it has as one new file in
``<data dir>/visits/``: one ``write`` a second whatever the traffic, no
database on the core that serves redirects. A file is written under a
hidden name and then renamed, so a crashed worker leaves no half file
behind (nothing is synced to disk first: after a power loss a file may
hold zeroed blocks, whose lines are dropped as damaged).

The compactor (``links/compactor.py``) folds the files: it counts identical
lines, hands the counts and the file names to ``Store.fold_visits`` — one
transaction folds the visits *and* records the names, so a file is folded
exactly once even if the compactor dies before deleting it — and then
deletes them. One compactor per spool folds at a time (an ``flock`` on
``visits/.lock``); with PostgreSQL, each host folds its own spool.

Lines that cannot be a visit (a damaged file) are dropped and reported, so
one bad file cannot stop the stats.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from steadylink.links.model import VisitRow
from steadylink.links.store import Store

SUFFIX = ".visits"
# A fold reads files until it holds this many bytes (~100,000 visits) or this many
# files (their names go in one statement: 999 parameters at most on older SQLite).
_FOLD_BYTES = 4 << 20
_FOLD_FILES = 500
# A hidden file this old was left by a worker killed while writing it.
_STALE_TMP_SECONDS = 600
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HOST = socket.gethostname()[:40].replace("-", "_") or "host"


def visit_line_tail(day: str, host: str, family: str, is_bot: bool) -> str:
    """Everything of a visit's line after its code (the recorder keeps these per client)."""
    clean = (field.translate(_NO_SEPARATORS) for field in (day, host, family))
    return "".join(f"\t{field}" for field in clean) + ("\t1\n" if is_bot else "\t0\n")


_NO_SEPARATORS = str.maketrans("\t\n\r", "   ")


@dataclass(frozen=True, slots=True)
class Fold:
    """What one fold did: visits folded, files consumed, lines dropped as damaged, and
    whether files it saw are still waiting (a backlog: fold again at once)."""

    visits: int = 0
    files: int = 0
    dropped: int = 0
    more: bool = False


class VisitSpool:
    """A directory of visit files: workers ``write``, the compactor ``fold``s."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seq = itertools.count(1)
        self._forget: list[str] = []  # files deleted since the last fold

    # the worker's side ------------------------------------------------------------

    def write(self, text: str) -> Path:
        """Add one file holding ``text`` (whole visit lines); return its path."""
        name = f"{time.time_ns():020d}-{_HOST}-{os.getpid()}-{next(self._seq)}{SUFFIX}"
        hidden = self.directory / f".{name}"
        try:
            try:
                out = open(hidden, "x", encoding="utf-8")  # noqa: SIM115 - closed below
            except FileNotFoundError:  # the first write, or someone removed the directory
                self.directory.mkdir(parents=True, exist_ok=True)
                out = open(hidden, "x", encoding="utf-8")  # noqa: SIM115 - closed below
            with out:
                out.write(text)
            os.rename(hidden, self.directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                hidden.unlink()
            raise
        return self.directory / name

    # the compactor's side ---------------------------------------------------------

    def waiting(self) -> list[Path]:
        """The files not folded yet, oldest first."""
        return [self.directory / name for name in self._scan()]

    def _scan(self, *, drop_stale: bool = False) -> list[str]:
        """Names of the waiting files, oldest first; with ``drop_stale``, hidden files
        this old were left by a worker killed while writing them, and are removed."""
        names: list[str] = []
        cutoff = time.time() - _STALE_TMP_SECONDS
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if not entry.name.endswith(SUFFIX):
                        continue
                    if not entry.name.startswith("."):
                        names.append(entry.name)
                    elif drop_stale:
                        with contextlib.suppress(OSError):
                            if entry.stat().st_mtime < cutoff:
                                os.unlink(entry.path)
        except FileNotFoundError:
            return []
        return sorted(names)

    def fold(self, store: Store, now: datetime) -> Fold:
        """Fold the waiting files (up to ~4 MB or 500 of them) into ``store``; then delete them."""
        with self._locked() as mine:
            if not mine:
                return Fold()  # another compactor is folding this spool
            batch, cut = self._take_batch()
            if not batch and not self._forget:
                return Fold()
            counts: Counter[str] = Counter()
            for text in batch.values():
                counts.update(text.split("\n"))  # not splitlines: a host may hold U+0085
            rows, dropped = parse_lines(counts)
            names = list(batch)
            already = store.fold_visits(names, rows, at=now, forget=self._forget)
            done = [name for name in names if name in already] if already else names
            for name in done:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / name).unlink()
            self._forget = done
            if already:
                return Fold(files=len(done), more=True)  # the rest is folded next time
            return Fold(visits=sum(row.n for row in rows), files=len(done), dropped=dropped, more=cut)

    def _take_batch(self) -> tuple[dict[str, str], bool]:
        """The oldest files' texts, up to the limits; and whether the limits left some out."""
        batch: dict[str, str] = {}
        size = 0
        names = self._scan(drop_stale=True)
        for i, name in enumerate(names):
            try:
                text = (self.directory / name).read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue  # folded and deleted by the compactor before us
            batch[name] = text
            size += len(text)
            if size >= _FOLD_BYTES or len(batch) >= _FOLD_FILES:
                return batch, i + 1 < len(names)
        return batch, False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[bool]:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = open(self.directory / ".lock", "a")  # noqa: SIM115 - held for the fold
        except OSError:
            yield False
            return
        with lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True


def parse_lines(counts: Counter[str]) -> tuple[list[VisitRow], int]:
    """Visit rows from counted lines, and how many visits were dropped as damaged."""
    rows: list[VisitRow] = []
    dropped = 0
    for line, n in counts.items():
        parts = line.split("\t")
        if (
            len(parts) == 5
            and "\x00" not in line  # no request holds one, and PostgreSQL refuses it in text
            and 0 < len(parts[0]) <= 64
            and _DAY.fullmatch(parts[1])
            and len(parts[2]) <= 255
            and 0 < len(parts[3]) <= 64
            and parts[4] in ("0", "1")
        ):
            rows.append(VisitRow(parts[0], parts[1], parts[2], parts[3], parts[4] == "1", n))
        elif line:
            dropped += n
    return rows, dropped
