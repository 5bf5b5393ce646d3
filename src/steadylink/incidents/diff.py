"""The release diff, narrowed to the changed lines nearest the failing frame.

Compares the failing release's tree with the previous release's
(``releases/<id>/src``), file by file for the failing frame's file first; each
changed line is said as ``file:line  old → new`` with only the words that
differ (``application.py:20  json.load → json.loads``). Hunks are ranked by
their distance to the failing line; other files' changes come after.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

MAX_FILES = 2000
MAX_BYTES = 1024 * 1024
_TOKEN = re.compile(r"[\w.]+|\S")


@dataclass(frozen=True)
class Change:
    file: str
    line: int  # in the new (failing) release; for a deletion, where it was
    old: str
    new: str

    @property
    def summary(self) -> str:
        old, new = narrow(self.old, self.new)
        return f"{self.file}:{self.line}  {old or '(nothing)'} → {new or '(removed)'}"


def narrow(old: str, new: str) -> tuple[str, str]:
    """The differing words of two lines, as written: ``json.load`` and ``json.loads``."""
    old, new = old.strip(), new.strip()
    if not old or not new:
        return old, new  # a line added or removed: all of it
    a, b = list(_TOKEN.finditer(old)), list(_TOKEN.finditer(new))
    matcher = difflib.SequenceMatcher(a=[m.group() for m in a], b=[m.group() for m in b], autojunk=False)
    olds, news = [], []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            olds.append(old[a[i1].start() : a[i2 - 1].end()] if i2 > i1 else "")
            news.append(new[b[j1].start() : b[j2 - 1].end()] if j2 > j1 else "")
    if not olds:
        return old, new
    return " … ".join(o for o in olds if o), " … ".join(n for n in news if n)


def tree_of(data_dir: Path, release: str) -> Path | None:
    if "/" in release or release.startswith("."):
        return None
    tree = data_dir / "releases" / release / "src"
    return tree if tree.is_dir() else None


def changed_lines(old_tree: Path, new_tree: Path) -> list[Change]:
    changes: list[Change] = []
    old_files = _python_files(old_tree)
    new_files = _python_files(new_tree)
    for relative in sorted(set(old_files) | set(new_files)):
        before = _read(old_files.get(relative))
        after = _read(new_files.get(relative))
        if before == after:
            continue
        matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal":
                continue
            olds, news = before[i1:i2], after[j1:j2]
            for k in range(max(len(olds), len(news))):
                old = olds[k] if k < len(olds) else ""
                new = news[k] if k < len(news) else ""
                if old.strip() or new.strip():
                    changes.append(
                        Change(relative, j1 + 1 + min(k, max(len(news) - 1, 0)), old.rstrip(), new.rstrip())
                    )
    return changes


def nearest_changes(
    changes: list[Change], *, file: str | None, line: int | None, limit: int = 5
) -> list[Change]:
    """Changes in the failing file nearest its line first, then the rest in file order."""

    def distance(change: Change) -> tuple[int, int]:
        if file is not None and (
            change.file == file or change.file.endswith("/" + file) or file.endswith("/" + change.file)
        ):
            return (0, abs(change.line - (line or 0)))
        return (1, 0)

    return sorted(changes, key=distance)[:limit]


def _python_files(tree: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in tree.rglob("*.py"):
        if len(found) >= MAX_FILES:
            break
        relative = path.relative_to(tree).as_posix()
        if relative.startswith(("venv/", ".venv/")) or "/site-packages/" in relative:
            continue
        found[relative.removeprefix("src/")] = path
    return found


def _read(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        if path.stat().st_size > MAX_BYTES:
            return []
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
