"""The link map against a real HAProxy and a real store: changes within a tick, rebuilds all at once."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.edge.edge_harness import Upstream, running_edge

from steadylink.edge import EdgeConfig, EdgeProcess, LinkMapSync, RuntimeClient, reload_edge
from steadylink.edge.linkmap import ensure_map_file
from steadylink.edge.runtime import RuntimeSession
from steadylink.errors import EdgeError
from steadylink.links.model import Link, LinkKind
from steadylink.links.sql_store import SqlStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def link(code: str, url: str | None = None, **fields: object) -> Link:
    return Link(code, LinkKind.URL, url or f"https://example.com/{code}", None, NOW, NOW, **fields)  # type: ignore[arg-type]


def ask(port: int, path: str, method: str = "GET") -> tuple[int, str | None, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("location"), response.getheader("x-served-by")
    finally:
        conn.close()


@pytest.fixture
def map_edge(edge_config: EdgeConfig, upstreams: list[Upstream]) -> Iterator[EdgeProcess]:
    config = replace(edge_config, edge_redirects=True, initial={0: _ready()})
    ensure_map_file(config.link_map)
    with running_edge(config) as process:
        yield process


def _ready():  # type: ignore[no-untyped-def]
    from steadylink.edge import SlotSetting

    return SlotSetting(weight=100, state="ready")


def make_sync(store: SqlStore, edge: EdgeProcess, *, limit: int = 1000, runtime: RuntimeClient | None = None) -> LinkMapSync:
    events: list[tuple[str, str, str]] = []
    sync = LinkMapSync(store, lambda: runtime or edge.runtime, edge.config.link_map, limit=limit,
                       on_event=lambda *e: events.append(e))  # fmt: skip
    sync.events = events  # type: ignore[attr-defined]
    return sync


def test_changes_reach_the_edge_within_a_tick(sqlite_store: SqlStore, map_edge: EdgeProcess) -> None:
    port = map_edge.config.port
    sync = make_sync(sqlite_store, map_edge)
    sync.tick()  # adopts the worker that loaded the (empty) file
    sqlite_store.insert_link(link("fresh"))
    assert ask(port, "/fresh")[2] == "s0"  # not in the map yet: the app answers
    sync.tick()
    assert ask(port, "/fresh") == (302, "https://example.com/fresh", "edge")
    assert ask(port, "/fresh", "HEAD") == (302, "https://example.com/fresh", "edge")

    sqlite_store.replace_link(link("fresh", "https://example.org/moved"))
    sync.tick()
    assert ask(port, "/fresh")[1] == "https://example.org/moved"

    sqlite_store.replace_link(link("fresh", "https://example.org/moved", is_disabled=True))
    sync.tick()
    assert ask(port, "/fresh")[2] == "s0"  # disabled: the app answers (404)

    sqlite_store.replace_link(link("fresh"))
    sync.tick()
    assert ask(port, "/fresh")[2] == "edge"
    sqlite_store.delete_link("fresh")
    sync.tick()
    assert ask(port, "/fresh")[2] == "s0"
    assert sync.size == 0 and sync.error is None


def test_links_the_edge_must_not_answer_go_to_the_app(sqlite_store: SqlStore, map_edge: EdgeProcess) -> None:
    sync = make_sync(sqlite_store, map_edge)
    sync.tick()
    sqlite_store.insert_links([
        link("pw", password_hash="h"), link("lim", max_visits=3), link("exp", expires_at=NOW + timedelta(days=9)),
        link("sp", "https://example.com/a b"), link("crlf", "https://example.com/\r\nX: y"),
    ])  # fmt: skip
    sync.tick()
    for code in ("pw", "lim", "exp", "sp", "crlf"):
        assert ask(map_edge.config.port, f"/{code}")[2] == "s0", code
    assert sync.size == 0


def test_a_full_map_leaves_new_links_to_the_app_and_a_rebuild_keeps_the_most_visited(
    sqlite_store: SqlStore, map_edge: EdgeProcess
) -> None:
    port = map_edge.config.port
    sqlite_store.insert_links([link("few", visits=1), link("many", visits=50)])
    sync = make_sync(sqlite_store, map_edge, limit=1)
    sync.rebuild()
    assert (ask(port, "/many")[2], ask(port, "/few")[2]) == ("edge", "s0")
    sqlite_store.insert_link(link("later"))
    sync.tick()
    assert ask(port, "/later")[2] == "s0" and sync.size == 1
    assert sync.events[-1][0] == "edge.map_rebuilt"  # type: ignore[attr-defined]


def test_a_rebuild_cut_short_keeps_the_old_map_whole(sqlite_store: SqlStore, map_edge: EdgeProcess) -> None:
    port = map_edge.config.port
    sqlite_store.insert_link(link("old"))
    sync = make_sync(sqlite_store, map_edge)
    sync.rebuild()
    sqlite_store.insert_links([link(f"n{i}", "https://example.com/" + "x" * 200) for i in range(200)])

    class DyingSession(RuntimeSession):
        sent = 0

        def run(self, command: str) -> str:
            DyingSession.sent += 1
            if DyingSession.sent == 3:  # the socket goes away in the middle of the payload
                self.close()
            return super().run(command)

    class DyingRuntime(RuntimeClient):
        def session(self, *, timeout: float | None = None) -> RuntimeSession:
            return DyingSession(self.socket_path)

    broken = make_sync(sqlite_store, map_edge, runtime=DyingRuntime(map_edge.config.stats_socket))
    broken.adopt(map_edge.runtime.worker_pid() + 1)  # a worker it did not load: it must rebuild
    broken.tick()
    assert broken.error is not None and "did not answer" in broken.error
    assert broken.events[-1][0] == "edge.map_sync_failed"  # type: ignore[attr-defined]
    # nothing of the new version is visible: the old map answers, whole
    assert ask(port, "/old")[2] == "edge"
    assert ask(port, "/n0")[2] == "s0"
    sync.rebuild()
    assert ask(port, "/n199")[2] == "edge" and sync.size == 201


def test_a_lost_socket_mid_sync_is_applied_again_in_full(sqlite_store: SqlStore, map_edge: EdgeProcess) -> None:
    port = map_edge.config.port
    sent: list[str] = []

    class FlakySession(RuntimeSession):
        def run(self, command: str) -> str:
            sent.append(command)
            if len(sent) == 3:  # the socket goes away in the middle of a batch
                self.close()
            return super().run(command)

    class FlakyRuntime(RuntimeClient):
        def session(self, *, timeout: float | None = None) -> RuntimeSession:
            return FlakySession(self.socket_path)

    flaky = make_sync(sqlite_store, map_edge, runtime=FlakyRuntime(map_edge.config.stats_socket))
    flaky.tick()
    sqlite_store.insert_links([link("a1"), link("a2"), link("a3")])
    flaky.tick()
    assert flaky.error is not None and "did not answer" in flaky.error
    flaky.tick()  # the whole batch again: the position had not moved
    assert flaky.error is None
    assert [ask(port, f"/a{i}")[2] for i in (1, 2, 3)] == ["edge"] * 3
    assert flaky.size == 3


def test_a_reload_keeps_changes_made_while_the_file_was_written(
    sqlite_store: SqlStore, map_edge: EdgeProcess
) -> None:
    port = map_edge.config.port
    sync = make_sync(sqlite_store, map_edge)
    sqlite_store.insert_link(link("before"))
    with sync.lock:
        sync.write_file()
        sqlite_store.insert_link(link("during"))  # after the file, before the new worker
        reloaded = reload_edge(map_edge)
        sync.expect_reload()
    sync.runtime = lambda: reloaded.runtime
    sync.tick()
    assert (ask(port, "/before")[2], ask(port, "/during")[2]) == ("edge", "edge")


def test_the_sync_thread_can_run_beside_requests(sqlite_store: SqlStore, map_edge: EdgeProcess) -> None:
    """Requests keep being answered (edge or app, never an error) while the map is rebuilt."""
    port = map_edge.config.port
    sqlite_store.insert_links([link(f"k{i}") for i in range(2000)])
    sync = make_sync(sqlite_store, map_edge, limit=5000)
    sync.rebuild()
    failures: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            status = ask(port, "/k1")[0]
            if status != 302:
                failures.append(status)

    worker = threading.Thread(target=load)
    worker.start()
    for _ in range(3):
        sync.rebuild()
    stop.set()
    worker.join()
    assert failures == []


def test_the_map_file_path_is_the_one_haproxy_reads(map_edge: EdgeProcess) -> None:
    assert str(map_edge.config.link_map) in map_edge.config.config_file.read_text()
    assert Path(map_edge.config.link_map).exists()


def test_a_map_file_that_cannot_be_written_leaves_the_old_one_and_says_why(
    sqlite_store: SqlStore, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    old = folder / "links.map"
    old.write_text("/old https://example.com/old\n")
    sqlite_store.insert_link(link("fresh"))
    sync = LinkMapSync(sqlite_store, lambda: RuntimeClient(folder / "none.sock"), old, limit=10)
    (folder / ".links.map.new").mkdir()  # the new file cannot be made (as on a full disk)
    with pytest.raises(EdgeError, match=r"Cannot write the edge link map .*links\.map.*keeps the map it has"):
        sync.write_file()
    assert old.read_text() == "/old https://example.com/old\n"


def test_an_import_reaches_the_edge_in_one_tick(sqlite_store: SqlStore, map_edge: EdgeProcess) -> None:
    sync = make_sync(sqlite_store, map_edge, limit=20_000)
    sync.tick()
    sqlite_store.insert_links([link(f"bulk{i}") for i in range(3_000)])
    sync.tick()
    assert sync.size == 3_000 and ask(map_edge.config.port, "/bulk2999")[2] == "edge"
    # more changes than the store's change log keeps: a rebuild, which misses none
    sqlite_store.insert_links([link(f"more{i}") for i in range(9_000)])
    sync.tick()
    assert sync.events[-1][0] == "edge.map_rebuilt"  # type: ignore[attr-defined]
    assert sync.size == 12_000 and ask(map_edge.config.port, "/more8999")[2] == "edge"
