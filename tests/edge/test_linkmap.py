"""What the edge map may hold: codes and targets that are safe as a map line, a command and a header."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadylink.edge.linkmap import (
    MAX_LOCATION,
    build_add_map,
    build_del_map,
    build_set_map,
    entry_of,
    map_entry,
    select_entries,
    write_map_file,
)
from steadylink.links.model import Link, LinkKind

MAP = Path("/run/sl/links.map")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_plain_link_becomes_its_path_and_location() -> None:
    assert map_entry("Abc-_9", "https://example.com/a?b=1;c#d") == ("/Abc-_9", "https://example.com/a?b=1;c#d")


def test_non_ascii_targets_are_percent_encoded_as_the_app_sends_them() -> None:
    assert map_entry("uni", "https://example.com/ä") == ("/uni", "https://example.com/%C3%A4")


@pytest.mark.parametrize(
    "code",
    ["with space", "cr\rlf", "new\nline", "per%cent", "x" * 65, "", "api", "Healthz", "a/b", "tab\t"],
)
def test_codes_a_map_key_cannot_hold_safely_stay_with_the_app(code: str) -> None:
    assert map_entry(code, "https://example.com/") is None


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a b",
        "https://example.com/\r\nSet-Cookie: x=1",
        'https://example.com/"quote',
        "https://example.com/back\\slash",
        "https://example.com/<tag>",
        "https://example.com/{x}",
        "https://example.com/\x00",
        "javascript:alert(1)",
        "ftp://example.com/",
        "https://example.com/" + "a" * MAX_LOCATION,
    ],
)
def test_targets_that_would_break_a_header_or_a_command_stay_with_the_app(url: str) -> None:
    assert map_entry("ok", url) is None


@given(st.text(max_size=80), st.text(max_size=200))
def test_no_entry_ever_holds_a_separator(code: str, url: str) -> None:
    entry = map_entry(code, "https://example.com/" + url)
    if entry is not None:
        key, location = entry
        for text in (key, location):
            assert not any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in text)
            assert '"' not in text and "\\" not in text


def test_only_plain_links_get_an_entry() -> None:
    plain = Link("pl", LinkKind.URL, "https://example.com/", None, NOW, NOW)
    assert entry_of(plain) == ("/pl", "https://example.com/")
    assert entry_of(None) is None
    for fields in ({"is_disabled": True}, {"password_hash": "h"}, {"max_visits": 2}, {"expires_at": NOW}):
        link = Link("pl", LinkKind.URL, "https://example.com/", None, NOW, NOW, **fields)  # type: ignore[arg-type]
        assert entry_of(link) is None, fields


def test_selection_skips_unsafe_links_and_keeps_the_bound() -> None:
    links = [("a", "https://a.example/"), ("b c", "https://b.example/"), ("d", "https://d.example/"), ("e", "https://e/")]
    assert list(select_entries(links, 2)) == [("/a", "https://a.example/"), ("/d", "https://d.example/")]
    assert list(select_entries(links, 0)) == []


def test_runtime_commands_escape_what_the_cli_would_split_on() -> None:
    assert build_set_map(MAP, ("/a", "https://x/?a=1;b=2")) == r"set map /run/sl/links.map /a https://x/?a=1\;b=2"
    assert build_del_map(MAP, "/a") == "del map /run/sl/links.map /a"
    # a payload line is read like a map file line: no escaping needed
    assert build_add_map(MAP, [("/a", "https://x/;y")], 3) == "add map @3 /run/sl/links.map <<\n/a https://x/;y\n"


def test_the_map_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "links.map"
    assert write_map_file(path, [("/a", "https://a/")]) == 1
    assert write_map_file(path, [("/b", "https://b/"), ("/c", "https://c/")]) == 2
    assert path.read_text() == "/b https://b/\n/c https://c/\n"
    assert [p.name for p in tmp_path.iterdir()] == ["links.map"]  # no hidden leftover
