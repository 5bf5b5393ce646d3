"""A git command for tests that build throwaway repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` as a fixed author; return its stdout."""
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Alice", "-c", "user.email=alice@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()
