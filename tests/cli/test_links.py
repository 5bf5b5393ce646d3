"""``steadylink links``: every command, its JSON, and its errors."""

from __future__ import annotations

import json

import pytest

from .conftest import Invoke

RECORD_FIELDS = {
    "code", "short_url", "url", "kind", "created_at", "expires_at", "max_visits", "visits",
    "is_disabled", "has_password",
}  # fmt: skip


def _create(cli: Invoke, *args: str) -> dict[str, object]:
    result = cli("links", "create", *args, "--json")
    assert result.exit_code == 0, result.stderr
    record: dict[str, object] = json.loads(result.stdout)
    return record


def test_create_with_a_generated_code(cli: Invoke) -> None:
    record = _create(cli, "https://Example.COM/path?q=1")
    assert set(record) >= RECORD_FIELDS
    assert record["url"] == "https://example.com/path?q=1"
    assert len(str(record["code"])) == 7
    assert record["short_url"] == f"http://127.0.0.1:8080/{record['code']}"
    assert record["created_at"] == "2026-01-01T00:00:00Z"


def test_create_with_every_option(cli: Invoke) -> None:
    record = _create(
        cli, "https://example.com/", "--code", "Sale-2026", "--expires-at", "2026-02-01T12:00:00+01:00",
        "--max-visits", "3", "--password", "hunter2",
    )  # fmt: skip
    assert record["code"] == "Sale-2026"
    assert record["expires_at"] == "2026-02-01T11:00:00Z"
    assert record["max_visits"] == 3
    assert record["has_password"] is True


def test_create_prints_the_short_url_first(cli: Invoke) -> None:
    result = cli("links", "create", "https://example.com/", "--code", "first")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "http://127.0.0.1:8080/first"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["example.com"], "error: The URL has no scheme"),
        (["javascript:alert(1)"], "error: Only http and https"),
        (["https://example.com/", "--code", "api"], "error: The code 'api' is reserved"),
        (["https://example.com/", "--code", "../etc"], "error: A code may hold only"),
        (["https://example.com/", "--max-visits", "0"], "error: max_visits must be"),
        (["https://example.com/", "--expires-at", "tomorrow"], "error: --expires-at must be an ISO"),
        (["https://example.com/", "--expires-at", "2020-01-01T00:00:00Z"], "error: expires_at is in"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(cli: Invoke, args: list[str], message: str) -> None:
    result = cli("links", "create", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert json.loads(cli("links", "list", "--json").stdout)["total"] == 0


def test_duplicate_code_differing_in_case_is_a_conflict(cli: Invoke) -> None:
    _create(cli, "https://example.com/", "--code", "sale")
    result = cli("links", "create", "https://example.org/", "--code", "SALE")
    assert result.exit_code == 2
    assert "is taken" in result.stderr


def test_list_filters_and_pages(cli: Invoke) -> None:
    for i in range(5):
        _create(cli, f"https://example.com/{i}", "--code", f"page-{i}")
    _create(cli, "https://other.example/", "--code", "other")
    page = json.loads(cli("links", "list", "--query", "example.com", "--limit", "2", "--json").stdout)
    assert page["total"] == 5
    assert len(page["items"]) == 2
    rest = json.loads(cli("links", "list", "-q", "example.com", "--offset", "4", "--json").stdout)
    assert len(rest["items"]) == 1
    table = cli("links", "list")
    assert table.exit_code == 0
    assert "other" in table.stdout and "1-6 of 6" in table.stdout


def test_show_has_stats(cli: Invoke) -> None:
    _create(cli, "https://example.com/", "--code", "seen")
    record = json.loads(cli("links", "show", "seen", "--json").stdout)
    assert record["code"] == "seen"
    assert record["stats"] == {
        "total": 0, "per_day": {}, "referrers": {}, "agents": {}, "bots": 0, "humans": 0,
    }  # fmt: skip
    table = cli("links", "show", "seen")
    assert table.exit_code == 0 and "https://example.com/" in table.stdout


@pytest.mark.parametrize("command", ["show", "delete", "disable", "enable"])
def test_unknown_code_is_exit_1(cli: Invoke, command: str) -> None:
    extra = ["--yes"] if command == "delete" else []
    result = cli("links", command, "nope", *extra)
    assert result.exit_code == 1
    assert result.stderr == "error: No link with code 'nope'.\n"


def test_delete_asks_first(cli: Invoke) -> None:
    _create(cli, "https://example.com/", "--code", "keep")
    refused = cli("links", "delete", "keep", input="n\n")
    assert refused.exit_code == 1
    assert cli("links", "show", "keep").exit_code == 0
    deleted = cli("links", "delete", "keep", input="y\n")
    assert deleted.exit_code == 0
    assert cli("links", "show", "keep").exit_code == 1


def test_delete_yes(cli: Invoke) -> None:
    _create(cli, "https://example.com/", "--code", "gone")
    assert cli("links", "delete", "gone", "--yes").exit_code == 0
    assert cli("links", "show", "gone").exit_code == 1


def test_disable_and_enable(cli: Invoke) -> None:
    _create(cli, "https://example.com/", "--code", "flip")
    assert cli("links", "disable", "flip").exit_code == 0
    assert json.loads(cli("links", "show", "flip", "--json").stdout)["is_disabled"] is True
    assert cli("links", "enable", "flip").exit_code == 0
    assert json.loads(cli("links", "show", "flip", "--json").stdout)["is_disabled"] is False
