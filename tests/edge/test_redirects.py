"""HAProxy answers plain links itself, and every GET it answers reaches the visit spool once."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from tests.edge.edge_harness import Upstream, running_edge, wait_for

from steadylink.edge import EdgeConfig, EdgeProcess, SlotSetting, VisitReader, read_visit_state
from steadylink.edge.linkmap import write_map_file
from steadylink.edge.visitreader import STATE_FILE
from steadylink.links.spool import VisitSpool


def get(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


@pytest.fixture
def config(edge_config: EdgeConfig) -> EdgeConfig:
    return replace(edge_config, edge_redirects=True, initial={0: SlotSetting(100, "ready")})


@pytest.fixture
def map_edge(config: EdgeConfig, upstreams: list[Upstream]) -> Iterator[EdgeProcess]:
    write_map_file(config.link_map, [("/abc", "https://example.com/a?b=1;c#d"), ("/Up", "https://example.org/")])
    with running_edge(config) as process:
        yield process


class Reader:
    def __init__(self, config: EdgeConfig, spool_dir: Path) -> None:
        self.spool = VisitSpool(spool_dir)
        self.reader = VisitReader(config.visit_socket, self.spool, config.run_dir / STATE_FILE, flush_seconds=0.1)
        self.thread = threading.Thread(target=self.reader.run)
        self.thread.start()

    def stop(self) -> None:
        self.reader.stop()
        self.thread.join(timeout=10)

    def lines(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for path in self.spool.waiting():
            found.update(line for line in path.read_text().split("\n") if line)
        return found


def test_the_edge_answers_as_the_app_does(map_edge: EdgeProcess) -> None:
    port = map_edge.config.port
    answer = get(port, "/abc", headers={"X-Request-ID": "req-1"})
    assert answer.status == 302
    assert answer.getheader("location") == "https://example.com/a?b=1;c#d"
    # web/redirect.py's headers and body
    assert answer.getheader("cache-control") == "private, max-age=0"
    assert answer.getheader("content-type") == "text/plain; charset=utf-8"
    assert answer.getheader("content-length") == "6" and answer.body == b"Found\n"  # type: ignore[attr-defined]
    assert answer.getheader("x-request-id") == "req-1"
    assert answer.getheader("x-served-by") == "edge"
    head = get(port, "/abc", "HEAD")
    assert (head.status, head.getheader("location"), head.body) == (302, "https://example.com/a?b=1;c#d", b"")  # type: ignore[attr-defined]
    assert get(port, "/abc", headers={"X-Request-ID": "bad id\t"}).getheader("x-request-id") != "bad id\t"


@pytest.mark.parametrize("path", ["/abc/", "/ABC", "/up", "/missing", "/abc%20", "/api/v1/links"])
def test_anything_but_an_exact_code_goes_to_the_app(map_edge: EdgeProcess, path: str) -> None:
    assert get(map_edge.config.port, path).getheader("x-served-by") == "s0"


def test_post_to_a_code_goes_to_the_app(map_edge: EdgeProcess) -> None:
    assert get(map_edge.config.port, "/abc", "POST").getheader("x-served-by") == "s0"


def test_with_the_switch_off_everything_goes_to_the_app(edge_config: EdgeConfig, upstreams: list[Upstream]) -> None:
    config = replace(edge_config, initial={0: SlotSetting(100, "ready")})
    write_map_file(config.link_map, [("/abc", "https://example.com/")])
    with running_edge(config):
        assert get(config.port, "/abc").getheader("x-served-by") == "s0"
        assert "links.map" not in config.config_file.read_text()


def test_each_edge_visit_lands_in_the_spool_once(map_edge: EdgeProcess, config: EdgeConfig, tmp_path: Path) -> None:
    reader = Reader(config, tmp_path / "visits")
    try:
        port = config.port
        for _ in range(3):
            get(port, "/abc", headers={"Referer": "https://News.Example.org/x?y", "User-Agent": "Mozilla/5.0 Firefox/120.0"})
        get(port, "/Up", headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
        get(port, "/abc", "HEAD")  # looks only: no visit
        get(port, "/missing")  # the app's: the app counts its own
        wait_for(lambda: sum(reader.lines().values()) == 4, timeout=10)
    finally:
        reader.stop()
    lines = reader.lines()
    assert {line.split("\t", 1)[0]: n for line, n in lines.items()} == {"abc": 3, "Up": 1}
    abc = next(line for line in lines if line.startswith("abc"))
    assert abc.split("\t")[2:] == ["news.example.org", "Firefox", "0"]
    up = next(line for line in lines if line.startswith("Up"))
    assert up.split("\t")[2:] == ["", "bot", "1"]
    state = read_visit_state(config.run_dir)
    assert state is not None and (state["received"], state["lost"]) == (4, 0)


def test_visits_made_while_the_reader_is_down_arrive_when_it_is_back(
    map_edge: EdgeProcess, config: EdgeConfig, tmp_path: Path
) -> None:
    reader = Reader(config, tmp_path / "visits")
    get(config.port, "/abc")
    wait_for(lambda: sum(reader.lines().values()) == 1, timeout=10)
    reader.stop()
    for _ in range(20):
        assert get(config.port, "/abc").status == 302  # the edge does not wait for its reader
    again = Reader(config, tmp_path / "visits")
    try:
        wait_for(lambda: sum(again.lines().values()) == 21, timeout=15)
    finally:
        again.stop()
    state = read_visit_state(config.run_dir)
    assert state is not None and (state["received"], state["lost"], state["duplicates"]) == (21, 0, 0)


@pytest.mark.e2e
def test_visits_answered_by_two_threads_at_once_are_each_numbered_once(
    config: EdgeConfig, upstreams: list[Upstream], tmp_path: Path
) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.skip("wrk is not installed (scripts/test installs it)")
    threaded = replace(config, nbthread=2)  # production runs a thread per core
    write_map_file(threaded.link_map, [("/abc", "https://example.com/a")])
    reader = Reader(threaded, tmp_path / "visits")
    try:
        with running_edge(threaded):
            done = subprocess.run(
                [wrk, "-t2", "-c32", "-d3s", f"http://127.0.0.1:{threaded.port}/abc"],
                capture_output=True, text=True, timeout=60, check=True,
            )  # fmt: skip
            made = int(re.search(r"(\d+) requests in", done.stdout).group(1))  # type: ignore[union-attr]
        wait_for(lambda: (read_visit_state(threaded.run_dir) or {}).get("received", 0) >= made, timeout=15)
    finally:
        reader.stop()
    state = read_visit_state(threaded.run_dir)
    assert state is not None
    # wrk does not count the answers in flight when it stops (up to one per connection)
    assert made <= state["received"] <= made + 32  # type: ignore[operator]
    assert (state["lost"], state["duplicates"], state["damaged"]) == (0, 0, 0)
    assert sum(reader.lines().values()) == state["received"]
