"""The seed incidents as tests: each bad release is stopped before it can hurt.

A real `steadylink up` (HAProxy + worker groups), real builds of this checkout
from a temporary git repository with one seed bug applied each, and a steady
load through the front door that checks every answer.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.e2e.guard_harness import (
    GuardStack,
    SteadyLoad,
    commit_variant,
    make_source_repo,
    short_tmp,
)

from steadylink.edge import RuntimeClient

pytestmark = [pytest.mark.e2e]

FAST_RELEASES = {
    "STEADYLINK_RELEASE_GATES": "ruff,compile,import",
    "STEADYLINK_RELEASE_CANARY_MIN_SECONDS": "1",
    "STEADYLINK_RELEASE_CANARY_MIN_REQUESTS": "20",
    "STEADYLINK_RELEASE_BAKE_SECONDS": "2",
    "STEADYLINK_RELEASE_STAGE_SAMPLE": "40",
    "STEADYLINK_LIMITS_CREATE_PER_MINUTE": "0",
    "STEADYLINK_ACCESS_LOG": "false",
    # These tests judge the release machinery on redirects the app answers; with
    # edge redirects on, HAProxy answers plain links itself and a release's redirect
    # bug never meets them (tests/e2e/test_edge.py runs the stack with them on).
    "STEADYLINK_EDGE_REDIRECTS": "false",
}

# (branch, file, old, new, what the seed did, exit code, step that must catch it)
SEED_BUGS = [
    (
        "json-loads",
        "src/steadylink/web/redirect.py",
        "location = self.ctx.cache.location(code)\n",
        # redirect.py no longer imports json: as the seed wrote it, ruff would catch it first
        'location = __import__("json").loads(self.ctx.cache.location(code))\n',
        "json.loads where the value is used as is",
        3,
        "stage",
    ),
    (
        "routes-typo",
        "src/steadylink/web/api.py",
        "@router.post(",
        "@router.posts(",
        "a route decorator typo, like @app.routes",
        3,
        "import",
    ),
    (
        "wrong-name",
        "src/steadylink/web/redirect.py",
        "location = self.ctx.cache.location(code)\n",
        "location = self.ctx.cache.location(cod)\n",
        "a name referred to by a wrong name",
        3,
        "ruff",
    ),
    (
        "wrong-file",
        "src/steadylink/web/pages.py",
        '"steadylink.web", "templates"',
        '"steadylink.web", "template"',
        "a folder referred to by a wrong name",
        3,
        "import",
    ),
    (
        "stats-typo",
        "src/steadylink/web/templates/link.html",
        '<span class="value" id="total-visits">{{ stats.total }}</span>',
        '<span class="value" id="total-visits">{{ stats.totl + 0 }}</span>',
        "a typo in the link page's template: every stats page answers 500, redirects work",
        3,
        "stage",
    ),
    (
        "visits-dropped",
        "src/steadylink/links/clicks.py",
        "        batch, self._pending = self._pending, []\n",
        "        batch, self._pending = [], self._pending\n",
        "two names swapped: redirects work, every visit stays in memory and no stats move",
        3,
        "stage",
    ),
    (
        "query-dropped",
        "src/steadylink/links/targets.py",
        'parts.path or "/", parts.query, parts.fragment',
        'parts.path or "/", "", parts.fragment',
        "one wrong argument: every new or changed link loses its query string; existing ones work",
        3,
        "stage",
    ),
    (
        "disabled-ignored",
        "src/steadylink/links/service.py",
        "    if link is None or link.is_disabled:\n",
        "    if link is None:\n",
        "one condition dropped: a link its owner disabled redirects again; every other link works",
        3,
        "stage",
    ),
    (
        "referer-crash",
        "src/steadylink/web/redirect.py",
        "            try:\n                answer = self.memory_redirect(code, method, request_id)\n",
        "            try:\n"
        '                if headers.get("referer") and sum(map(ord, code)) % 3 == 0:\n'
        "                    raise RuntimeError('v2 bug on some redirects')\n"
        "                answer = self.memory_redirect(code, method, request_id)\n",
        "fails a third of live redirects, never in staging",
        4,
        "canary",
    ),
]


@pytest.fixture(scope="module")
def stack() -> Iterator[GuardStack]:
    workdir = short_tmp()
    source = make_source_repo(workdir)
    for branch, path, old, new, message, _, _ in SEED_BUGS:
        commit_variant(source, branch, path, old, new, f"v2: {message}")
    commit_variant(source, "good", "README.md", "# steadylink", "# steadylink\n", "v2: a good change")
    guard = GuardStack(workdir, source, FAST_RELEASES)
    try:
        guard.start()  # inside: a start that fails still stops what it started
        yield guard
    finally:
        left = guard.stop()
        assert guard.process is not None and guard.process.returncode is not None
        assert left == [], f"pids {left} still running after steadylink up stopped"


@pytest.fixture(scope="module")
def links(stack: GuardStack) -> dict[str, str]:
    return stack.seed_links(60)


def deploy(stack: GuardStack, ref: str, *extra: str) -> tuple[int, dict[str, object], str]:
    done = stack.cli("deploy", ref, "--source", str(stack.source), "--json", *extra)
    try:
        record = json.loads(done.stdout)
    except ValueError:
        record = {}
    return done.returncode, record, done.stdout + done.stderr


def serving(stack: GuardStack) -> str:
    done = stack.cli("status", "--json")
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["serving"])


@pytest.mark.parametrize(
    ("branch", "path", "old", "new", "message", "exit_code", "caught_by"),
    SEED_BUGS,
    ids=[b[0] for b in SEED_BUGS],
)
def test_a_seed_bug_never_takes_the_service_down(
    stack: GuardStack,
    links: dict[str, str],
    branch: str,
    path: str,
    old: str,
    new: str,
    message: str,
    exit_code: int,
    caught_by: str,
) -> None:
    before = serving(stack)
    with SteadyLoad(stack.front, stack.key, links) as load:
        code, record, output = deploy(stack, branch)
    assert code == exit_code, output
    assert record.get("caught_by", "").startswith(caught_by), output  # type: ignore[union-attr]
    assert len(load.report.failures) <= 5, load.report.failures[:10]
    assert load.report.requests > 50
    assert serving(stack) == before


def test_a_good_release_is_promoted_with_zero_failed_requests(
    stack: GuardStack, links: dict[str, str]
) -> None:
    before = serving(stack)
    with SteadyLoad(stack.front, stack.key, links) as load:
        code, record, output = deploy(stack, "good")
    assert code == 0, output
    assert record["verdict"] == "promoted"
    assert load.report.failures == []
    assert serving(stack) == record["id"] != before


def test_rollback_restores_the_previous_release(stack: GuardStack, links: dict[str, str]) -> None:
    now = serving(stack)
    with SteadyLoad(stack.front, stack.key, links) as load:
        done = stack.cli("rollback", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["serving"] != now == result.get("from", now)
    assert load.report.failures == []
    assert serving(stack) == result["serving"]


def test_bad_input_is_refused_and_production_untouched(stack: GuardStack) -> None:
    before = serving(stack)
    code, _, output = deploy(stack, "no-such-ref")
    assert code == 2 and "Traceback" not in output
    done = stack.cli("deploy", "main", "--source", "/nonexistent/repo")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert serving(stack) == before


def test_the_guard_dying_does_not_take_traffic_down(stack: GuardStack, links: dict[str, str]) -> None:
    assert stack.process is not None
    with SteadyLoad(stack.front, stack.key, links) as load:
        stack.process.send_signal(signal.SIGKILL)
        stack.process.wait()
        time.sleep(1.0)  # real traffic keeps flowing while no guard runs
        stack.start()
    assert load.report.failures == []
    assert httpx.get(f"{stack.front}/healthz").status_code == 200
    assert "adopted" in (stack.workdir / "up.log").read_text()
    # the adopting guard set the fallback servers: only the serving slot's is ready (edge/config.py)
    runtime = RuntimeClient(stack.data_dir / "run" / "haproxy.sock")
    rows = [line.split() for line in runtime.run("show servers state app").splitlines()[2:] if line]
    admin = {row[3]: int(row[6]) for row in rows}  # srv_name, srv_admin_state
    serving_slot = int(json.loads(stack.cli("status", "--json").stdout)["slots"][0]["slot"])
    ready = [name for name, state in admin.items() if name.endswith("b") and not state & 0x01]
    assert ready == [f"s{serving_slot}b"]


