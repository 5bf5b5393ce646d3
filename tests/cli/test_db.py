"""``steadylink db``: upgrade and current."""

from __future__ import annotations

import json

from steadylink.links.migrate import head_revision

from .conftest import Invoke


def test_fresh_database_is_not_at_head_until_upgraded(cli: Invoke) -> None:
    fresh = json.loads(cli("db", "current", "--json").stdout)
    assert fresh["revision"] is None and fresh["is_at_head"] is False
    assert cli("db", "current", "--check").exit_code == 1
    upgraded = cli("db", "upgrade")
    assert upgraded.exit_code == 0
    assert f"-> {head_revision()} (head)" in upgraded.stdout
    assert cli("db", "current", "--check").exit_code == 0
    assert "already at head" in cli("db", "upgrade").stdout


def test_current_hides_the_database_password(cli: Invoke) -> None:
    result = cli("db", "current", "--json", database="postgresql://u:secret@127.0.0.1:1/none")
    # nothing listens on port 1: the error names the problem without the password
    assert result.exit_code == 1
    assert "secret" not in result.stderr
    assert result.stderr.startswith("error: Cannot read the schema revision")
