from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from tests.edge.edge_harness import FrontDoor, Upstream, running_edge, wait_for

from steadylink.edge import (
    EdgeConfig,
    EdgeError,
    EdgeProcess,
    RuntimeClient,
    ServerStats,
    build_set_state,
    build_set_weight,
    measure_figures,
    parse_server_stats,
    wait_for_slot,
)
from steadylink.edge.config import fallback_slot
from steadylink.errors import InvalidInput

HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"
    "cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,"
    "rtime,ttime\n"
)
# Rows as HAProxy 2.6 prints them (trimmed after ttime).
SAMPLE = HEADER + (
    "app,s0,0,0,0,0,,52,0,0,,0,,0,0,39,39,DOWN,10,1,0,1,1,3,2,,1,3,1,,52,,2,0,,0,HANA,,,"
    "0,0,0,0,13,0,1,,,,0,0,,,,,-1,,,0,0,1,2\n"
    "app,s1,0,0,1,3,,54,0,0,,0,,0,0,0,0,UP,10,1,0,0,0,10,0,,1,3,2,,54,,2,0,,0,* L7OK,200,1,"
    "0,51,0,0,3,0,0,,,,0,0,,,,,0,,,0,0,4,5\n"
    "app,BACKEND,0,0,1,3,,106,0,0,0,0,,0,0,39,39,UP,20,2,0,,1,10,0,,1,3,0,,106,,1,0,,0,,,,"
    "0,51,0,0,16,0,,,,106,0,0,0,0,0,0,0,,,0,0,1,2\n"
    "other,s0,0,0,0,0,,7,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,1,0,,1,4,1,,7,,2,0,,0,L7OK,,,"
    "0,7,0,0,0,0,0,,,,0,0,,,,,0,,,0,0,0,0\n"
)


def stats(slot: int, **counters: int) -> ServerStats:
    fields = dict.fromkeys(ServerStats.__dataclass_fields__, 0)
    fields.update(slot=slot, status="UP", check_status="L7OK", **counters)
    return ServerStats(**fields)  # type: ignore[arg-type]


def test_commands_are_plain_strings() -> None:
    assert build_set_weight(2, 40) == "set weight app/s2 40"
    assert build_set_state(0, "drain") == "set server app/s0 state drain"
    assert build_set_state(3, "maint") == "set server app/s3 state maint"


@pytest.mark.parametrize("weight", [-1, 257])
def test_weight_out_of_range_is_refused(weight: int) -> None:
    with pytest.raises(InvalidInput):
        build_set_weight(0, weight)


def test_unknown_state_is_refused() -> None:
    with pytest.raises(InvalidInput, match="ready, drain, maint"):
        build_set_state(0, "off")


def test_show_stat_csv_parses_into_slots_of_the_app_backend_only() -> None:
    parsed = parse_server_stats(SAMPLE)
    assert set(parsed) == {0, 1}
    down, up = parsed[0], parsed[1]
    assert (down.status, down.check_status, down.is_up) == ("DOWN", "HANA", False)
    assert (down.lbtot, down.wredis, down.hrsp_5xx, down.hanafail) == (52, 39, 13, 1)
    assert down.failures == 13 + 39
    assert (up.check_status, up.is_up, up.scur, up.rtime) == ("L7OK", True, 1, 4)
    assert up.responses == 54


def test_a_fallback_servers_counts_are_its_slots_and_its_status_is_not() -> None:
    row = (
        "app,s0b,0,0,2,3,,40,0,0,,0,,0,1,0,0,UP,1,0,1,0,0,10,0,,1,3,5,,40,,2,0,,0,* L7OK,200,1,"
        "0,0,0,0,40,0,0,,,,0,0,,,,,0,,,0,0,9,9\n"
    )
    parsed = parse_server_stats(SAMPLE + row)
    assert set(parsed) == {0, 1}
    slot = parsed[0]
    assert (slot.status, slot.weight, slot.rtime) == ("DOWN", 10, 1)  # the slot's own
    assert (slot.lbtot, slot.hrsp_5xx, slot.eresp, slot.scur) == (52 + 40, 13 + 40, 1, 2)


def test_the_serving_slots_fallback_is_the_ready_one() -> None:
    assert fallback_slot({0: 0, 1: 100, 2: 5}) == 1
    assert fallback_slot({2: 50, 1: 50}) == 1  # a tie: the lower slot, as HAProxy orders backups
    assert fallback_slot({0: 0}) is None and fallback_slot({}) is None
    assert build_set_state(3, "ready", fallback=True) == "set server app/s3b state ready"


def test_figures_are_deltas_and_count_retried_responses_as_failures() -> None:
    before = {0: stats(0, lbtot=100, hrsp_2xx=100), 1: stats(1, lbtot=10, hrsp_2xx=10)}
    after = {
        0: stats(0, lbtot=200, hrsp_2xx=200, rtime=3),
        1: stats(1, lbtot=30, hrsp_2xx=12, hrsp_5xx=2, wredis=16),
        2: stats(2, lbtot=5, hrsp_2xx=5),
    }
    figures = measure_figures(before, after)
    assert (figures[0].requests, figures[0].failures, figures[0].error_ratio) == (100, 0, 0.0)
    assert figures[0].avg_response_ms == 3
    assert (figures[1].requests, figures[1].server_errors, figures[1].retried_away) == (20, 2, 16)
    assert figures[1].error_ratio == pytest.approx(18 / 20)
    assert figures[2].requests == 5


def test_figures_restart_from_zero_after_a_reload_reset_the_counters() -> None:
    figures = measure_figures({0: stats(0, lbtot=500)}, {0: stats(0, lbtot=7, hrsp_2xx=7)})
    assert figures[0].requests == 7


def test_an_unreachable_socket_raises_edge_error(tmp_path: Path) -> None:
    with pytest.raises(EdgeError, match="did not answer"):
        RuntimeClient(tmp_path / "nothing.sock", timeout=0.2).server_stats()


def ready_slots(edge: EdgeProcess, weights: dict[int, int]) -> None:
    for slot, weight in weights.items():
        edge.runtime.set_state(slot, "ready")
        edge.runtime.set_weight(slot, weight)


def send_many(front_door: FrontDoor, count: int, method: str = "GET") -> Counter[tuple[int, str]]:
    return Counter(front_door.send(method) for _ in range(count))


@pytest.mark.e2e
def test_traffic_splits_by_weight(
    edge: EdgeProcess, upstreams: list[Upstream], front_door: FrontDoor
) -> None:
    ready_slots(edge, {0: 30, 1: 10})
    seen = send_many(front_door, 200)
    assert set(seen) <= {(200, "s0"), (200, "s1")}
    assert 140 <= seen[(200, "s0")] <= 160
    stats = edge.runtime.server_stats()
    assert (stats[0].weight, stats[1].weight) == (30, 10)
    assert stats[0].hrsp_2xx == seen[(200, "s0")]


@pytest.mark.e2e
def test_weight_zero_sends_no_new_requests(
    edge: EdgeProcess, upstreams: list[Upstream], front_door: FrontDoor
) -> None:
    ready_slots(edge, {0: 10, 1: 10})
    send_many(front_door, 10)
    started = time.perf_counter()
    edge.runtime.set_weight(1, 0)
    elapsed_ms = (time.perf_counter() - started) * 1000
    hits_before = upstreams[1].behaviour.hits
    seen = send_many(front_door, 50)
    assert seen == Counter({(200, "s0"): 50})
    assert upstreams[1].behaviour.hits == hits_before
    assert elapsed_ms < 50, f"set weight took {elapsed_ms:.1f} ms"


@pytest.mark.e2e
def test_get_answered_500_by_one_slot_is_retried_on_the_other(
    edge: EdgeProcess, upstreams: list[Upstream], front_door: FrontDoor
) -> None:
    ready_slots(edge, {0: 10, 1: 10})
    upstreams[1].behaviour.status = 500
    before = edge.runtime.server_stats()
    seen = send_many(front_door, 100)
    figures = measure_figures(before, edge.runtime.server_stats())
    assert seen == Counter({(200, "s0"): 100}), "clients must not see the canary's 500s"
    assert upstreams[1].behaviour.hits >= 40
    # HAProxy 2.6 counts a retried 500 as a redispatch, not as a 5xx response.
    assert figures[1].retried_away == upstreams[1].behaviour.hits
    assert figures[1].error_ratio == pytest.approx(1.0)
    assert figures[0].error_ratio == 0.0


@pytest.mark.e2e
def test_post_is_never_replayed(edge: EdgeProcess, upstreams: list[Upstream], front_door: FrontDoor) -> None:
    ready_slots(edge, {1: 10})
    upstreams[1].behaviour.status = 500
    assert front_door.send("POST") == (500, "s1")
    assert upstreams[1].behaviour.hits == 1


@pytest.mark.e2e
def test_slot_failing_without_retry_is_marked_down_after_a_few_errors(
    edge_config: EdgeConfig, upstreams: list[Upstream]
) -> None:
    config = replace(edge_config, retry_statuses=(502, 503, 504))
    with running_edge(config) as edge:
        front_door = FrontDoor(config.port)
        ready_slots(edge, {0: 10, 1: 10})
        upstreams[1].behaviour.status = 500
        seen = send_many(front_door, 40)
        stats = edge.runtime.server_stats()[1]
        # Health checks (which /healthz passes) may already be bringing it back: "DOWN 1/2".
        assert stats.status.startswith("DOWN") and stats.hanafail == 1
        # observe layer7 + error-limit 5: five 500s reach clients (measured 5, once 8: the
        # mark-down runs in the check task, so a request or two can slip in before it).
        assert config.error_limit <= seen[(500, "s1")] <= config.error_limit + 5
        upstreams[1].behaviour.status = 200
        wait_for_slot(edge.runtime, 1, lambda s: s.is_up, timeout=5)
        front_door.close()


@pytest.mark.e2e
def test_an_outage_every_slot_shares_keeps_the_apps_own_answers(
    edge_config: EdgeConfig, upstreams: list[Upstream]
) -> None:
    """The database down: the serving slot answers 503s while its health check passes.

    Marked down by ``observe layer7``, every app request once got HAProxy's "no
    server is available" instead; now the slot's fallback server carries them.
    """
    config = replace(edge_config, retry_statuses=(502, 504))
    with running_edge(config) as edge:
        front_door = FrontDoor(config.port)
        ready_slots(edge, {0: 100})
        edge.runtime.set_fallback(0, config.slots)
        upstreams[0].behaviour.status = 503
        seen = send_many(front_door, 60, method="POST")
        assert seen == {(503, "s0"): 60}  # every answer the app's own, named by its slot
        assert upstreams[0].behaviour.hits == 60
        stats = edge.runtime.server_stats()[0]
        assert stats.hanafail >= 1  # the slot itself was marked down meanwhile...
        assert stats.hrsp_5xx == 60  # ...and its fallback's answers count as the slot's
        upstreams[0].behaviour.status = 200
        assert send_many(front_door, 5) == {(200, "s0"): 5}
        front_door.close()


@pytest.mark.e2e
def test_drain_lets_the_request_in_flight_finish(
    edge: EdgeProcess, upstreams: list[Upstream], front_door: FrontDoor
) -> None:
    ready_slots(edge, {0: 10})
    upstreams[0].behaviour.delay = 0.5
    results: list[tuple[int, str]] = []
    slow = threading.Thread(target=lambda: results.append(FrontDoor(edge.config.port).send()))
    slow.start()
    wait_for(lambda: edge.runtime.server_stats()[0].scur == 1)
    ready_slots(edge, {1: 10})
    edge.runtime.set_state(0, "drain")
    upstreams[0].behaviour.delay = 0.0
    assert send_many(front_door, 20) == Counter({(200, "s1"): 20})
    slow.join(timeout=5)
    assert results == [(200, "s0")]
    assert edge.runtime.server_stats()[0].status == "DRAIN"


@pytest.mark.e2e
def test_unknown_slot_is_reported(edge: EdgeProcess) -> None:
    with pytest.raises(EdgeError, match="No such server"):
        edge.runtime.set_weight(9, 1)


class _Answers(RuntimeClient):
    """A runtime client whose HAProxy answers from a script (no socket)."""

    def __init__(self, answer: str) -> None:
        super().__init__(Path("/nonexistent.sock"))
        self.answer = answer
        self.sent: list[str] = []

    def run(self, command: str) -> str:
        self.sent.append(command)
        return self.answer


def test_fallbacks_are_set_ready_first_and_an_older_haproxy_without_them_is_left_alone() -> None:
    fine = _Answers("\n")
    fine.set_fallback(2, 3)
    assert fine.sent == [
        "set server app/s2b state ready", "set server app/s0b state maint", "set server app/s1b state maint",
    ]  # fmt: skip
    older = _Answers("No such server.\n")  # adopted from a guard whose config had none
    older.set_fallback(0, 4)
    assert older.sent == ["set server app/s0b state ready"]
    with pytest.raises(EdgeError, match="refused a fallback"):
        _Answers("Permission denied.\n").set_fallback(0, 1)
