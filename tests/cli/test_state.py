"""The settings every command loads make the data folder private (``datadir.secure_data_dir``)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from tests.cli.conftest import Invoke


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


def test_a_new_data_dir_is_private(cli: Invoke, data_dir: Path) -> None:
    ok: Result = cli("links", "create", "https://example.com/a", "--code", "a")
    assert ok.exit_code == 0, ok.output
    assert cli("backup").exit_code == 0
    def links_backups() -> list[Path]:
        return [p for p in (data_dir / "backups").glob("*.db") if not p.name.endswith("-ops.db")]

    [backup] = links_backups()  # beside it, the guard's ops.db (journal, incidents)
    assert cli("restore", str(backup), "--yes").exit_code == 0  # takes a pre-restore copy
    assert cli("keys", "create", "--role", "viewer", "--name", "v").exit_code == 0
    assert (data_dir / "links.db").exists() and len(links_backups()) == 2
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "links.db") == 0o600
    assert not open_to_others(data_dir)
