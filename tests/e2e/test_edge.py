"""Edge redirects end to end: a real `steadylink up`, HAProxy answering plain links itself.

With every worker stopped, plain links keep being answered and their visits
counted; a disabled link stops redirecting at the edge within the sync bound;
with ``edge.redirects = false`` the app answers them, with the same headers.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.guard_harness import GuardStack, make_source_repo, short_tmp, wait_until

pytestmark = [pytest.mark.e2e]

QUIET = {"STEADYLINK_ACCESS_LOG": "false", "STEADYLINK_LIMITS_CREATE_PER_MINUTE": "0"}
# what must match byte for byte between an edge answer and the app's
SAME_HEADERS = ("location", "cache-control", "content-type", "content-length")


@contextlib.contextmanager
def running_stack(env: dict[str, str]) -> Iterator[GuardStack]:
    workdir = short_tmp()
    stack = GuardStack(workdir, make_source_repo(workdir), {**QUIET, **env})
    try:
        stack.start()  # inside: a start that fails still stops what it started
        yield stack
    finally:
        stack.stop()


def answer(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers={"User-Agent": "Mozilla/5.0 Firefox/120.0"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def status_of(stack: GuardStack) -> dict[str, object]:
    done = stack.cli("status", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


class PlainLoad:
    """Keep-alive GETs of random plain codes; every answer checked, successes counted."""

    def __init__(self, port: int, links: dict[str, str]) -> None:
        self.port, self.links = port, links
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> PlainLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        rng = random.Random(3)
        codes = list(self.links)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self._stop.is_set():
            code = rng.choice(codes)
            try:
                conn.request("GET", f"/{code}", headers={"Referer": "https://news.example/a"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"/{code}: {exc!r}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                continue
            if response.status == 302 and response.getheader("location") == self.links[code]:
                self.ok += 1
            else:
                self.failures.append(f"/{code}: {response.status} {response.getheader('x-served-by')}")
            time.sleep(0.002)
        conn.close()


def worker_groups(stack: GuardStack) -> list[int]:
    state = json.loads((stack.data_dir / "run" / "guard.json").read_text())
    return [int(entry["pid"]) for entry in state["slots"].values()]


def total_visits(stack: GuardStack, codes: list[str]) -> int:
    with httpx.Client(base_url=stack.front, headers={"Authorization": f"Bearer {stack.key}"}) as client:
        return sum(int(client.get(f"/api/v1/links/{code}").json()["visits"]) for code in codes)


def settled_visits(stack: GuardStack, codes: list[str]) -> int:
    """The visit total once the visits made so far are all folded (it holds still for 3 s)."""
    last = total_visits(stack, codes)
    while True:
        time.sleep(3)
        now = total_visits(stack, codes)
        if now == last:
            return now
        last = now


def test_plain_links_outlive_stopped_workers_and_their_visits_count() -> None:
    with running_stack({}) as stack:
        links = stack.seed_links(20)
        codes = list(links)
        wait_until(lambda: answer(stack.port, f"/{codes[-1]}")[1].get("x-served-by") == "edge", 5, "the map")
        status, headers, body = answer(stack.port, f"/{codes[0]}")
        assert (status, headers["location"], headers["x-served-by"]) == (302, links[codes[0]], "edge")
        # the app's own answer, straight from the release's socket: the same headers and body
        slot_socket = next((stack.data_dir / "run").glob("slot*.sock"))
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(slot_socket)), base_url="http://app") as app:
            own = app.get(f"/{codes[0]}", headers={"User-Agent": "Mozilla/5.0 Firefox/120.0"})
        assert {h: own.headers[h] for h in SAME_HEADERS} == {h: headers[h] for h in SAME_HEADERS}
        assert own.content == body

        before = settled_visits(stack, codes)  # the GETs above are counted too, within ~2 s
        groups = worker_groups(stack)
        with PlainLoad(stack.port, links) as load:
            time.sleep(1)
            for pid in groups:
                os.killpg(pid, signal.SIGSTOP)
            try:
                time.sleep(5)  # bench/edge.py holds them 30 s
                stopped_ok = load.ok
            finally:
                for pid in groups:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGCONT)
            time.sleep(1)
        assert load.failures == []
        assert stopped_ok > 100
        # every one of those visits reaches the stats (edge reader -> spool -> compactor)
        wait_until(lambda: total_visits(stack, codes) - before == load.ok, 60, f"{load.ok} visits counted")
        edge = status_of(stack)["edge_redirects"]
        assert isinstance(edge, dict)
        assert edge["map"]["links"] >= 20 and edge["map"]["error"] is None
        assert edge["visits"]["lost"] == 0


def test_a_disabled_link_stops_redirecting_at_the_edge_within_the_bound() -> None:
    with running_stack({}) as stack:
        links = stack.seed_links(3)
        code = next(iter(links))
        wait_until(lambda: answer(stack.port, f"/{code}")[1].get("x-served-by") == "edge", 5, "the map")
        done = stack.cli("links", "disable", code)
        assert done.returncode == 0, done.stderr
        disabled_at = time.monotonic()
        wait_until(lambda: answer(stack.port, f"/{code}")[0] == 404, 3, "the edge to drop the link")
        assert time.monotonic() - disabled_at < 1.5
        # a reload (a renewed certificate) keeps the map and drops nothing
        other = list(links)[1]
        done = stack.cli("edge", "reload")
        assert done.returncode == 0, done.stderr
        assert answer(stack.port, f"/{other}")[1]["x-served-by"] == "edge"
        assert answer(stack.port, f"/{code}")[0] == 404


def test_with_edge_redirects_off_the_app_answers_them() -> None:
    with running_stack({"STEADYLINK_EDGE_REDIRECTS": "false"}) as stack:
        links = stack.seed_links(2)
        code = next(iter(links))
        status, headers, body = answer(stack.port, f"/{code}")
        assert (status, headers["location"], body) == (302, links[code], b"Found\n")
        assert headers["x-served-by"].startswith("s")
        assert headers["cache-control"] == "private, max-age=0"
        assert status_of(stack)["edge_redirects"] is None
        assert not (stack.data_dir / "run" / "links.map").exists()


def test_a_bad_certificate_is_refused_before_anything_starts(tmp_path: Path) -> None:
    workdir = short_tmp()
    stack = GuardStack(workdir, make_source_repo(workdir), {"STEADYLINK_EDGE_TLS_CERT": str(tmp_path / "gone.pem")})
    done = stack.cli("up", "--port", str(stack.port), "--ops-port", str(stack.ops_port), timeout=120)
    assert done.returncode != 0
    assert f"{tmp_path / 'gone.pem'} does not exist" in done.stderr.replace("\n", " ")
    assert "Traceback" not in done.stderr
    assert not (stack.data_dir / "run" / "haproxy.pid").exists()
