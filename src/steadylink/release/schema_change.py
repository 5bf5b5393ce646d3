"""A release's schema change in words: which migrations it applies, and what they break.

Staging applies the candidate's migrations to a copy of production data and
starts the release serving now on it (``staging.py``). When that release
cannot start or answers wrongly there, the operator is told which migration
did it, in the release's own words (its revision and the first line of its
docstring), and what broke, in the current release's own words (the
``error:`` line it printed, see ``links/compat.py``), with the rule that
avoids it: expand in one release, contract in a later one.
"""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path

MIGRATIONS_GLOB = "lib/python*/site-packages/steadylink/links/migrations/versions"


def breaks_current(migrations: list[str], current: str, log: str) -> str:
    """The sentence for a migration that breaks the release serving now, with its own words."""
    said = [line.strip() for line in log.splitlines() if line.strip().startswith("error:")]
    why = said[-1].removeprefix("error:").strip() if said else "\n".join(log.splitlines()[-8:])
    what = f"migration {', '.join(migrations)}" if migrations else "the candidate's schema"
    return (
        f"{what} breaks the current release {current}, which still serves production: {why}"
        "\nExpand in this release (add what the new code needs, keep what the current release "
        "reads); drop or rename in a later release, once nothing reads it."
    ).strip()


def applied_migrations(python: Path, before: str, after: str | None) -> list[str]:
    """``revision (first line of its docstring)`` of each migration from ``before`` to ``after``,
    read from the release's installed migrations folder (parsed, not imported)."""
    found: dict[str, tuple[str | None, str]] = {}
    for folder in python.parent.parent.glob(MIGRATIONS_GLOB):
        for path in folder.glob("*.py"):
            with contextlib.suppress(SyntaxError, OSError, ValueError):
                found.update(_migration_of(ast.parse(path.read_text())))
    chain: list[str] = []
    revision = after
    while revision and revision != before and revision in found and len(chain) < 100:
        down, summary = found[revision]
        chain.append(f"{revision} ({summary})" if summary else revision)
        revision = down
    return chain[::-1]


def _migration_of(module: ast.Module) -> dict[str, tuple[str | None, str]]:
    values: dict[str, object] = {}
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError):
                values[node.targets[0].id] = ast.literal_eval(node.value)
    revision, down = values.get("revision"), values.get("down_revision")
    if not isinstance(revision, str):
        return {}
    summary = (ast.get_docstring(module) or "").strip().splitlines()[:1]
    return {revision: (down if isinstance(down, str) else None, summary[0] if summary else "")}
