"""The data folder is private: 0700 folders and 0600 files, new or left by an older version."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from steadylink.datadir import secure_data_dir


@pytest.fixture(autouse=True)
def readable_umask() -> Iterator[None]:
    """Start as a default Debian shell does (022), and give the test process its umask back."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def open_to_others(root: Path) -> list[str]:
    return [f"{p} {mode(p):o}" for p in [root, *root.rglob("*")] if mode(p) & 0o077]


def test_an_existing_data_dir_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for name in ("links.db", "backups/pre-restore-1.db", "records/r1.json", "run/operator.key", "audit.log"):
        path = data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.write_text("x")
        path.chmod(0o644)
    tool = data_dir / "releases" / "r1" / "venv" / "bin" / "python"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!")
    tool.chmod(0o755)
    data_dir.chmod(0o755)

    secure_data_dir(data_dir)

    assert mode(data_dir) == 0o700
    assert mode(data_dir / "backups") == 0o700
    assert mode(data_dir / "backups" / "pre-restore-1.db") == 0o600
    assert mode(data_dir / "records" / "r1.json") == 0o600
    assert mode(data_dir / "links.db") == 0o600
    assert mode(tool) == 0o755  # release folders are behind the 0700 data folder; never made unrunnable
    fresh = data_dir / "later.log"
    fresh.write_text("x")  # made after: the umask keeps it private
    assert mode(fresh) == 0o600
