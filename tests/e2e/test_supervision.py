"""The stack supervises itself: each fault of issue 9, item 4, on a real `steadylink up`.

A steady checked load runs through the front door while a test kills or stops
one process the way an operator or the kernel would; the guard must bring the
service back, say so (up's terminal and the event journal), and count every
visit. The last tests restart and stop `up` itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.guard_harness import GuardStack, SteadyLoad, make_source_repo, short_tmp, wait_until

from steadylink.edge import EdgeConfig, read_master_status
from steadylink.release.processes import is_group_gone, read_group
from steadylink.watch.journal import Journal

pytestmark = [pytest.mark.e2e]

ENV = {
    "STEADYLINK_LIMITS_CREATE_PER_MINUTE": "0",
    "STEADYLINK_ACCESS_LOG": "false",
    "STEADYLINK_RELEASE_WORKERS": "2",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[GuardStack]:
    workdir = short_tmp()
    with GuardStack(workdir, make_source_repo(workdir), ENV).running() as guard:
        yield guard


@pytest.fixture(scope="module")
def links(stack: GuardStack) -> dict[str, str]:
    return stack.seed_links(40)


def state(stack: GuardStack) -> dict[str, object]:
    body: dict[str, object] = json.loads((stack.data_dir / "run" / "guard.json").read_text())
    return body


def serving_entry(stack: GuardStack) -> tuple[int, dict[str, object]]:
    body = state(stack)
    slots = body["slots"]
    assert isinstance(slots, dict)
    n, entry = next((int(n), e) for n, e in slots.items() if e["release"] == body["serving"])
    return n, entry


def weights(stack: GuardStack) -> dict[str, int]:
    body = state(stack)["weights"]
    assert isinstance(body, dict)
    return body


def haproxy_master(stack: GuardStack) -> int:
    return int((stack.data_dir / "run" / "haproxy.pid").read_text().split()[0])


def restarts(stack: GuardStack, what: str) -> list[str]:
    journal = Journal.for_data_dir(stack.data_dir)
    try:
        events = journal.read(kinds=["supervisor.restarted"])
    finally:
        journal.close()
    return [e.message for e in events if e.body.get("what") == what]


def front_is_back(stack: GuardStack) -> bool:
    try:
        return httpx.get(f"{stack.front}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def seconds_until_back(stack: GuardStack, killed_at: float) -> float:
    deadline = killed_at + 10
    while time.monotonic() < deadline:
        if front_is_back(stack):
            return time.monotonic() - killed_at
        time.sleep(0.02)
    raise AssertionError("the front door did not come back within 10 s:\n" + up_log(stack)[-2000:])


def up_log(stack: GuardStack) -> str:
    return (stack.workdir / "up.log").read_text()


@pytest.mark.parametrize("victim", ["master", "worker"])
def test_haproxy_killed_is_back_within_two_seconds_with_the_same_weights(
    stack: GuardStack, links: dict[str, str], victim: str
) -> None:
    before = weights(stack)
    config = EdgeConfig(run_dir=stack.data_dir / "run")
    pid = haproxy_master(stack) if victim == "master" else read_master_status(config).workers[0]
    seen = len(restarts(stack, "haproxy"))
    with SteadyLoad(stack.front, stack.key, links) as load:
        time.sleep(0.5)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        back = seconds_until_back(stack, time.monotonic())
        time.sleep(1.0)
    assert back < 2.0, f"back after {back:.2f} s"
    assert weights(stack) == before
    assert haproxy_master(stack) != pid or victim == "worker"
    wait_until(lambda: len(restarts(stack, "haproxy")) > seen, 5, "a supervisor.restarted event")
    assert "restarted haproxy" in up_log(stack)
    # the guard holds the listening socket: a client that connects while no HAProxy runs
    # waits for the new one instead of being refused; only requests on connections the
    # dead process had accepted can fail, and only at the kill
    refused = [f for f in load.report.failures if "ConnectError" in f[1]]
    assert refused == [], refused[:5]
    late = [f for f in load.report.failures if f[0] > killed_at + 0.5]
    assert late == [], late[:5]
    assert len(load.report.failures) <= 2, load.report.failures


def test_a_group_whose_leader_is_killed_is_replaced_and_every_visit_is_counted(
    stack: GuardStack, links: dict[str, str]
) -> None:
    slot, entry = serving_entry(stack)
    leader = int(str(entry["pid"]))
    code = next(iter(links))
    with SteadyLoad(stack.front, stack.key, links) as load:
        os.kill(leader, signal.SIGKILL)
        wait_until(lambda: serving_entry(stack)[0] != slot, 60, "the group to be replaced")
        time.sleep(1.0)
    assert load.report.failures == [], load.report.failures[:5]
    wait_until(lambda: is_group_gone(leader), 15, "the old group's orphaned workers to be stopped")
    assert any("leader" in m for m in restarts(stack, "workers"))
    # visits after the replacement are counted: the new group has a compactor
    auth = {"Authorization": f"Bearer {stack.key}"}
    before = httpx.get(f"{stack.front}/api/v1/links/{code}", headers=auth).json()["visits"]
    for _ in range(20):
        assert httpx.get(f"{stack.front}/{code}").status_code == 302
    wait_until(
        lambda: httpx.get(f"{stack.front}/api/v1/links/{code}", headers=auth).json()["visits"] >= before + 20,
        15,
        "20 visits to be counted",
    )


def test_a_killed_compactor_is_restarted(stack: GuardStack) -> None:
    _, entry = serving_entry(stack)
    compactor = read_group(int(str(entry["pid"]))).compactor
    assert compactor is not None
    os.kill(compactor.pid, signal.SIGKILL)
    wait_until(lambda: restarts(stack, "compactor") != [], 10, "the compactor to be restarted")
    _, entry = serving_entry(stack)
    assert entry["compactor"] and int(str(entry["compactor"])) > 0


def test_a_worker_stopped_for_ten_seconds_costs_at_most_its_requests_in_flight(
    stack: GuardStack, links: dict[str, str]
) -> None:
    _, entry = serving_entry(stack)
    group = read_group(int(str(entry["pid"])))
    worker = group.workers[0].pid
    with SteadyLoad(stack.front, stack.key, links) as load:
        time.sleep(1.0)
        os.kill(worker, signal.SIGSTOP)
        try:
            time.sleep(10.0)
        finally:
            with contextlib.suppress(ProcessLookupError):  # the guard has killed it
                os.kill(worker, signal.SIGCONT)
        time.sleep(1.0)
    assert load.report.requests > 300
    assert len(load.report.failures) <= 0.01 * load.report.requests, load.report.failures[:5]
    assert any("stopped" in m for m in restarts(stack, "workers"))


def test_after_up_is_killed_and_started_again_haproxys_death_still_refuses_no_client(
    stack: GuardStack, links: dict[str, str]
) -> None:
    assert stack.process is not None
    stack.process.send_signal(signal.SIGKILL)  # the guard dies; HAProxy and the workers serve on
    stack.process.wait()
    stack.start()
    assert "adopted HAProxy" in up_log(stack)
    assert "sockets stay HAProxy's alone" not in up_log(stack)
    master = haproxy_master(stack)
    with SteadyLoad(stack.front, stack.key, links) as load:
        time.sleep(0.5)
        killed_at = time.time()
        os.kill(master, signal.SIGKILL)
        seconds_until_back(stack, time.monotonic())
        time.sleep(1.0)
    assert haproxy_master(stack) != master
    # the new guard copied the listening sockets from the HAProxy it adopted: clients that
    # connect while no HAProxy runs wait for the restarted one
    refused = [f for f in load.report.failures if "ConnectError" in f[1]]
    assert refused == [], refused[:5]
    assert [f for f in load.report.failures if f[0] > killed_at + 0.5] == []


def test_sigusr2_restarts_the_guard_in_place_without_a_failed_request(
    stack: GuardStack, links: dict[str, str]
) -> None:
    assert stack.process is not None
    guard_pid, master = stack.process.pid, haproxy_master(stack)
    _, entry = serving_entry(stack)
    with SteadyLoad(stack.front, stack.key, links) as load:
        time.sleep(0.5)
        stack.process.send_signal(signal.SIGUSR2)
        wait_until(lambda: up_log(stack).count("the guard lets go") >= 1, 30, "the guard letting go")
        wait_until(lambda: stack._is_up() and "adopted HAProxy" in up_log(stack).rsplit("lets go", 1)[-1],
                   60, "the guard executed again")  # fmt: skip
        time.sleep(1.0)
    assert stack.process.poll() is None and stack.process.pid == guard_pid  # the same process
    assert haproxy_master(stack) == master and serving_entry(stack)[1]["pid"] == entry["pid"]
    assert load.report.failures == [], load.report.failures[:5]
    journal = Journal.for_data_dir(stack.data_dir)
    try:
        assert journal.read(kinds=["guard.restarting"])
    finally:
        journal.close()
    # the guard executed again holds the listening sockets too: HAProxy dying refuses nobody
    with SteadyLoad(stack.front, stack.key, links) as load:
        time.sleep(0.5)
        os.kill(master, signal.SIGKILL)
        seconds_until_back(stack, time.monotonic())
        time.sleep(1.0)
    assert [f for f in load.report.failures if "ConnectError" in f[1]] == []


def test_a_restarted_up_stops_the_group_an_earlier_one_left_and_keeps_its_own_socket(
    stack: GuardStack,
) -> None:
    assert stack.process is not None
    _, entry = serving_entry(stack)
    old = int(str(entry["pid"]))
    # the guard and HAProxy die; the worker group serves on, unseen
    stack.process.send_signal(signal.SIGKILL)
    stack.process.wait()
    os.kill(haproxy_master(stack), signal.SIGKILL)
    time.sleep(0.5)
    stack.start()
    assert is_group_gone(old), "the earlier guard's group is still running"
    slot, _ = serving_entry(stack)
    assert (stack.data_dir / "run" / f"slot{slot}.sock").exists()
    for _ in range(3):  # the supervisor sees a healthy stack: nothing to restart
        time.sleep(1.0)
        assert front_is_back(stack)


def test_stopping_up_leaves_no_process_even_when_a_leader_is_dead(stack: GuardStack) -> None:
    assert stack.process is not None
    _, entry = serving_entry(stack)
    leader = int(str(entry["pid"]))
    edge = haproxy_master(stack)
    os.kill(leader, signal.SIGKILL)  # its workers are orphans in its group
    time.sleep(0.2)
    stack.stop()
    assert stack.process.returncode is not None
    assert is_group_gone(leader), "orphaned workers survived `up` stopping"
    assert is_group_gone(edge) or not _runs(edge)
    leftovers = subprocess.run(
        ["pgrep", "-f", str(stack.data_dir)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == [], f"processes left behind: {leftovers}"


def _runs(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] not in "ZX"
    except OSError:
        return False
