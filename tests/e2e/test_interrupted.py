"""A deploy whose guard dies half-way is ended by the next guard, not left half-done.

A real `steadylink up` deploys a release and is killed (`kill -9`) while the
candidate takes its canary share; `up` started again adopts HAProxy and the
workers, takes the candidate out of traffic, stops it and records why, while a
checked load runs through the front door throughout.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator

import pytest
from tests.e2e import guard_harness as harness
from tests.e2e.guard_harness import STEADYLINK, GuardStack, SteadyLoad, wait_until
from tests.e2e.test_guard import FAST_RELEASES

from steadylink.release.history import load_record
from steadylink.release.interrupted import CAUGHT_BY
from steadylink.watch.journal import Journal

pytestmark = [pytest.mark.e2e]

# the canary holds its first step long enough for the test to kill the guard there
ENV = {**FAST_RELEASES, "STEADYLINK_RELEASE_GATES": "compile", "STEADYLINK_RELEASE_CANARY_MIN_SECONDS": "120"}


@pytest.fixture(scope="module")
def stack() -> Iterator[GuardStack]:
    workdir = harness.short_tmp()
    source = harness.make_source_repo(workdir)
    harness.commit_variant(source, "good", "README.md", "# steadylink", "# steadylink\n", "v2: a good change")
    harness.commit_variant(source, "good3", "README.md", "# steadylink", "# steadylink\n\n", "v3: another one")
    with GuardStack(workdir, source, ENV).running() as guard:
        yield guard


def restart_up(stack: GuardStack, **env: str) -> None:
    """`up` killed (`kill -9`: HAProxy and the workers serve on) and started again with ``env``."""
    assert stack.process is not None
    stack.process.send_signal(signal.SIGKILL)
    stack.process.wait()
    stack.env.update(env)
    stack.start()


def deploy_in_background(stack: GuardStack, ref: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*STEADYLINK, "deploy", ref, "--source", str(stack.source)],
        env={**stack.env, "STEADYLINK_DATA_DIR": str(stack.data_dir)}, cwd=stack.workdir,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def guard_state(stack: GuardStack) -> dict[str, object]:
    body: dict[str, object] = json.loads((stack.data_dir / "run" / "guard.json").read_text())
    return body


def candidate_in_traffic(stack: GuardStack) -> str | None:
    """The release that takes traffic beside the serving one (a canary), if any."""
    state = guard_state(stack)
    slots, weights = state["slots"], state["weights"]
    assert isinstance(slots, dict) and isinstance(weights, dict)
    return next(
        (e["release"] for n, e in slots.items() if e["release"] != state["serving"] and weights.get(n, 0) > 0),
        None,
    )


def test_a_canary_whose_guard_was_killed_is_taken_out_of_traffic_by_the_next_guard(stack: GuardStack) -> None:
    assert stack.process is not None
    links = stack.seed_links(20)
    serving = guard_state(stack)["serving"]
    with SteadyLoad(stack.front, stack.key, links) as load:
        deploying = deploy_in_background(stack, "good")
        try:
            wait_until(lambda: candidate_in_traffic(stack) is not None, 240, "the candidate's canary share")
            candidate = candidate_in_traffic(stack)
            stack.process.send_signal(signal.SIGKILL)  # the guard dies in the middle of the canary
            stack.process.wait()
        finally:
            deploying.wait(timeout=30)  # the deploy command loses its guard and exits
        stack.start()
        assert candidate_in_traffic(stack) is None
    assert guard_state(stack)["serving"] == serving
    assert candidate is not None and candidate not in json.dumps(guard_state(stack)["slots"])
    record = load_record(stack.data_dir, candidate)
    assert (record.verdict, record.caught_by) == ("rolled_back", CAUGHT_BY)
    assert "the guard stopped during this deploy (canary, at " in record.steps[-1].output_tail
    journal = Journal.for_data_dir(stack.data_dir)
    try:
        [event] = [e for e in journal.read(kinds=["release.rolled_back"]) if e.release == candidate]
    finally:
        journal.close()
    assert event.body["step"] == CAUGHT_BY and event.body["reached_users"] is True
    assert load.report.failures == []
    # nothing is left mid-way: the next deploy is not refused and the guard restarts cleanly
    assert stack.cli("releases").returncode == 0


def test_a_bake_cut_short_keeps_the_new_release_and_the_next_deploy_leaves_one_serving(
    stack: GuardStack,
) -> None:
    restart_up(stack, STEADYLINK_RELEASE_CANARY_MIN_SECONDS="1", STEADYLINK_RELEASE_BAKE_SECONDS="300")
    before = guard_state(stack)["serving"]
    deploying = deploy_in_background(stack, "good")
    try:
        wait_until(lambda: guard_state(stack)["serving"] != before, 240, "the release's promotion")
    finally:
        restart_up(stack, STEADYLINK_RELEASE_BAKE_SECONDS="2")  # during the bake
        deploying.wait(timeout=30)
    state = guard_state(stack)
    promoted = str(state["serving"])
    assert state["warm_previous"] == before  # kept warm for a rollback
    record = load_record(stack.data_dir, promoted)
    assert record.verdict == "promoted"
    assert (record.steps[-1].name, record.steps[-1].verdict) == ("bake", "skipped")
    done = stack.cli("deploy", "good3", "--source", str(stack.source))
    assert done.returncode == 0, done.stdout + done.stderr
    # the bake's end stops what served before, the release warm from the cut bake included
    slots = guard_state(stack)["slots"]
    assert isinstance(slots, dict)
    assert [e["release"] for e in slots.values()] == [guard_state(stack)["serving"]]
