"""Error grouping on real tracebacks: worker JSON logs, foreign logs with prefixes, bad files."""

from __future__ import annotations

import io
import json
import os
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from steadylink.errors import InvalidInput, NotFound
from steadylink.incidents.error_hunt import SNIFF_BYTES, fingerprint, hunt_file, hunt_workers, parse_since
from steadylink.incidents.tracebacks import LINE_MAX, find_tracebacks
from steadylink.web.logs import RequestLog


def load_body(body: str) -> object:
    return json.load(body)  # type: ignore[arg-type]  # the seed's bug: json.load on a str


def lookup(table: dict[str, int], key: str) -> int:
    return table[key]


def real_traceback(call: Callable[[], object]) -> str:
    try:
        call()
    except Exception:
        return traceback.format_exc()
    raise AssertionError("it did not fail")


def prefixed(text: str, second: int, host: str = "ip-172-31-7-12") -> str:
    return "".join(f"Sep 20 19:00:{second:02d} {host} web[4211]: {line}\n" for line in text.splitlines())


def test_a_foreign_log_with_prefixes_and_repeats(tmp_path: Path) -> None:
    seed = real_traceback(lambda: load_body('{"a": 1}'))
    missing = real_traceback(lambda: lookup({}, "code"))
    log = tmp_path / "web.stdout.log"
    noise = "Sep 20 19:00:00 ip-172-31-7-12 web[4211]: GET / 200\n"
    log.write_text(noise + prefixed(seed, 1) + noise + prefixed(seed, 7, "ip-172-31-9-9") + prefixed(missing, 9)
                   + prefixed(seed, 12))  # fmt: skip
    groups = hunt_file(log)
    assert [(g.type, g.count) for g in groups] == [("AttributeError", 3), ("KeyError", 1)]
    top = groups[0]
    assert top.first_seen == "Sep 20 19:00:01" and top.last_seen == "Sep 20 19:00:12"
    assert any("json.load(body)" in line for line in top.source_lines())
    assert "Traceback (most recent call last):" in top.sample and "ip-172" not in top.sample


def test_the_same_error_on_another_line_is_one_group() -> None:
    one = real_traceback(lambda: lookup({}, "a"))
    moved = one.replace(", line ", ", line 1").replace("line 1", "line 99", 1)
    found = list(find_tracebacks((one + moved).splitlines()))
    assert len(found) == 2 and fingerprint(found[0].type, found[0].frames) == fingerprint(
        found[1].type, found[1].frames
    )


def test_worker_logs_group_by_release_with_the_source_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    tree = tmp_path / "releases" / "20260101000000-abc1234" / "src" / "src" / "steadylink" / "web"
    tree.mkdir(parents=True)
    stream = io.StringIO()
    for release in ("20260101000000-abc1234", "20260102000000-def5678"):
        log = RequestLog(release=release, enabled=True, stream=stream)
        try:
            lookup({}, "x")
        except KeyError as exc:
            log.error(exc, request_id="r1", method="GET", route="/{code}")
    (run / "slot1.log").write_text(stream.getvalue() + "not json\n" + real_traceback(lambda: load_body("x")))
    groups = hunt_workers(tmp_path, since=timedelta(hours=1))
    by_type = {g.type: g for g in groups}
    assert by_type["KeyError"].count == 2
    assert by_type["KeyError"].releases == {"20260101000000-abc1234", "20260102000000-def5678"}
    assert by_type["AttributeError"].releases == {"20260102000000-def5678"}  # the JSON line before it
    assert hunt_workers(tmp_path, release="20260101000000-abc1234")[0].count == 1
    later = datetime.now(UTC) + timedelta(hours=2)
    assert hunt_workers(tmp_path, since=timedelta(hours=1), now=later) == []  # all older than --since


def test_bad_files_get_one_sentence(tmp_path: Path) -> None:
    binary = tmp_path / "core"
    binary.write_bytes(b"\x7fELF\x00\x01" * 1000)
    with pytest.raises(InvalidInput, match="binary"):
        hunt_file(binary)
    with pytest.raises(NotFound):
        hunt_file(tmp_path / "none.log")
    with pytest.raises(InvalidInput, match=r"is a folder; give the log file in it\.$"):
        hunt_file(tmp_path)
    with pytest.raises(InvalidInput, match="--since"):
        parse_since("yesterday")


def test_a_log_without_newlines_is_read_in_pieces(tmp_path: Path) -> None:
    log = tmp_path / "one-line.log"
    with log.open("w") as out:
        out.write("x" * (LINE_MAX * 20))
        out.write("\n" + real_traceback(lambda: lookup({}, "k")))
    assert [g.type for g in hunt_file(log)] == ["KeyError"]


def test_a_pipe_is_read_as_it_comes(tmp_path: Path) -> None:
    """`steadylink errors --file <(eb logs)`: the log is a pipe, which cannot be sought."""
    fifo = tmp_path / "eb-logs"
    os.mkfifo(fifo)
    text = prefixed(real_traceback(lambda: lookup({}, "code")), 1) * 3

    def write() -> None:
        with fifo.open("w") as out:
            out.write(text)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        groups = hunt_file(fifo)
    finally:
        writer.join(timeout=10)
    assert [(g.type, g.count) for g in groups] == [("KeyError", 3)]


def test_a_traceback_across_the_first_bytes_read_is_found_whole(tmp_path: Path) -> None:
    missing = prefixed(real_traceback(lambda: lookup({}, "code")), 1)
    start = missing.index("Traceback (most recent")
    for offset in (-5, 0, 10):  # the first read ends inside, at, and after the traceback's first line
        log = tmp_path / f"cut{offset}.log"
        log.write_text("x" * (SNIFF_BYTES - start - offset - 1) + "\n" + missing)
        assert [(g.type, g.count) for g in hunt_file(log)] == [("KeyError", 1)], offset
