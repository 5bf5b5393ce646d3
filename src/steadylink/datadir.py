"""The data folder is its owner's alone: folders 0700, files 0600.

It holds the links database, backups (and the safety copies a restore takes),
release records with gate output, API keys, the audit log and logs — nothing
another account on the host should read. ``secure_data_dir`` is called when a
command first loads its settings and when a SQLite store opens: it sets the
process's umask to 077, so every file this process and the processes it
starts (workers, HAProxy, the compactor) create is private from birth, and it
takes group and other bits off what an earlier version left readable.

Release folders are skipped by that walk (their virtual environments hold
thousands of files, and the folder above them is 0700 already); the owner's
own bits are never changed, so executables stay executable.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
_SKIPPED = frozenset({"releases"})


def secure_data_dir(data_dir: Path) -> None:
    """Make ``data_dir`` (created if missing) and what it holds private to the owner."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    make_private(data_dir)
    for root, dirs, files in os.walk(data_dir):
        if Path(root) == data_dir:
            dirs[:] = [d for d in dirs if d not in _SKIPPED]
        for name in (*dirs, *files):
            make_private(Path(root, name))


def make_private(path: Path) -> None:
    """Take group and other permissions off ``path`` (a no-op for links and vanished files)."""
    with contextlib.suppress(FileNotFoundError):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            return
        path.chmod(stat.S_IMODE(mode) & 0o700)
