"""``steadylink keys``: the secret is shown once, lists never show it."""

from __future__ import annotations

import json

from .conftest import Invoke


def test_create_shows_the_secret_once_with_a_warning(cli: Invoke) -> None:
    result = cli("keys", "create", "--role", "editor", "--name", "ci")
    assert result.exit_code == 0
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("slk_")
    assert "cannot be shown again" in result.stderr
    listed = cli("keys", "list")
    assert listed.exit_code == 0
    assert "ci" in listed.stdout and secret not in listed.stdout


def test_create_json_and_list_json(cli: Invoke) -> None:
    created = json.loads(cli("keys", "create", "--role", "admin", "--name", "ops", "--json").stdout)
    assert created["role"] == "admin" and created["secret"].startswith("slk_")
    keys = json.loads(cli("keys", "list", "--json").stdout)
    assert [k["id"] for k in keys] == [created["id"]]
    assert "secret" not in keys[0]
    assert keys[0]["is_revoked"] is False


def test_revoke(cli: Invoke) -> None:
    created = json.loads(cli("keys", "create", "--role", "viewer", "--name", "x", "--json").stdout)
    assert cli("keys", "revoke", created["id"]).exit_code == 0
    keys = json.loads(cli("keys", "list", "--json").stdout)
    assert keys[0]["is_revoked"] is True and keys[0]["revoked_at"] == "2026-01-01T00:00:00Z"
    again = cli("keys", "revoke", created["id"])
    assert again.exit_code == 1
    assert again.stderr.startswith("error: No active key")


def test_unknown_role_is_exit_2(cli: Invoke) -> None:
    result = cli("keys", "create", "--role", "root", "--name", "x")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Unknown role 'root'; use one of viewer, editor")
