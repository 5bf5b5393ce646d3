"""Schema changes ship (expand/contract), and every release that serves is a built one.

A real `steadylink up` whose first release is built from the source's HEAD;
then an additive migration is promoted under a steady checked load with no
failed request, rolled back (the older release serves the newer schema), a
destructive one is rejected at staging naming itself while the release before
it keeps serving, and a restarted `up` serves exactly the release recorded as
serving, not the source's newest commit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.guard_harness import GuardStack, SteadyLoad, git, make_source_repo, short_tmp
from tests.e2e.migration_releases import (
    ADDITIVE_REVISION,
    DESTRUCTIVE_REVISION,
    commit_additive_migration,
    commit_corrupting_migration,
    commit_destructive_migration,
)
from tests.e2e.test_guard import FAST_RELEASES, deploy, serving

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack() -> Iterator[GuardStack]:
    workdir = short_tmp()
    source = make_source_repo(workdir)
    commit_additive_migration(source)
    commit_destructive_migration(source)
    commit_corrupting_migration(source)
    with GuardStack(workdir, source, FAST_RELEASES).running() as guard:
        yield guard


@pytest.fixture(scope="module")
def links(stack: GuardStack) -> dict[str, str]:
    return stack.seed_links(40)


def releases(stack: GuardStack) -> list[dict[str, object]]:
    done = stack.cli("releases", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def up_log(stack: GuardStack) -> str:
    return (Path(stack.workdir) / "up.log").read_text()


def worker_python(stack: GuardStack, release: str) -> str:
    state = json.loads((stack.data_dir / "run" / "guard.json").read_text())
    [python] = [e["python"] for e in state["slots"].values() if e["release"] == release]
    return str(python)


def test_the_first_release_is_built_from_head_and_listed(stack: GuardStack) -> None:
    first = serving(stack)
    head = git(stack.source, "rev-parse", "--short=7", "HEAD")
    assert first.endswith(head)
    [record] = releases(stack)
    assert record["id"] == first and record["verdict"] == "promoted"
    python = worker_python(stack, first)
    assert python.startswith(str(stack.data_dir / "releases" / first)), python


def test_an_additive_migration_is_promoted_with_zero_failed_requests(
    stack: GuardStack, links: dict[str, str]
) -> None:
    before = serving(stack)
    with SteadyLoad(stack.front, stack.key, links) as load:
        code, record, output = deploy(stack, "expand")
    assert code == 0, output
    assert record["verdict"] == "promoted"
    assert load.report.failures == [] and load.report.requests > 100
    assert serving(stack) == record["id"] != before
    steps = {s["name"]: s for s in record["steps"]}  # type: ignore[union-attr]
    assert ADDITIVE_REVISION in steps["stage-migrate"]["output_tail"]
    assert steps["stage-current-on-new-schema"]["verdict"] == "passed"
    assert steps["stage-current-on-new-schema"]["output_tail"].startswith(f"{before} on the migrated copy")
    log = up_log(stack)
    assert f"deploy.started {record['id']}: " in log and f"release.promoted {record['id']}: " in log


def test_a_rollback_past_an_expand_serves_the_older_release_on_the_newer_schema(
    stack: GuardStack, links: dict[str, str]
) -> None:
    expanded = serving(stack)
    with SteadyLoad(stack.front, stack.key, links) as load:
        done = stack.cli("rollback", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert load.report.failures == []
    older = serving(stack)
    assert older != expanded
    shown = {r["id"]: r for r in releases(stack)}
    assert (shown[expanded]["verdict"], shown[expanded]["caught_by"]) == ("rolled_back", "operator rollback")
    assert f"release.rolled_back {expanded}: " in up_log(stack)
    table = stack.cli("releases")
    [line] = [line for line in table.stdout.splitlines() if line.startswith(expanded)]
    assert " rolled back " in line and " operator rollback " in line


def rejected_at_stage(stack: GuardStack, links: dict[str, str], branch: str, step_name: str) -> tuple[str, str]:
    """Deploy ``branch`` under a checked load: rejected at ``step_name``, no user request failed,
    the release before it still serving. The release's id and what the step said."""
    before = serving(stack)
    with SteadyLoad(stack.front, stack.key, links) as load:
        code, record, output = deploy(stack, branch)
    assert code == 3, output
    assert record["caught_by"] == step_name, output
    [step] = [s for s in record["steps"] if s["name"] == step_name]  # type: ignore[union-attr]
    assert load.report.failures == []
    assert serving(stack) == before
    return str(record["id"]), str(step["output_tail"])


def test_a_destructive_migration_is_rejected_naming_it_and_the_old_release_serves(
    stack: GuardStack, links: dict[str, str]
) -> None:
    release, said = rejected_at_stage(stack, links, "contract", "stage-current-on-new-schema")
    assert said.startswith(f"migration {DESTRUCTIVE_REVISION} (rename links.owner to links.owned_by) breaks")
    assert "column links.owner is missing" in said and "bug in steadylink" not in said
    assert f"release.rejected {release}: " in up_log(stack)


def test_a_migration_that_rewrites_targets_is_rejected_though_both_releases_agree(
    stack: GuardStack, links: dict[str, str]
) -> None:
    _, said = rejected_at_stage(stack, links, "to-https", "stage")
    assert "FAIL data: after the migrations, " in said, said
    assert re.search(r"now answers 302 to http://(\w+)\.example/\S+, it led to https://\1\.example/", said), said
    answer = httpx.get(f"{stack.front}/{next(iter(links))}", timeout=5)
    assert answer.headers["location"].startswith("https://seed.example/")  # production untouched


def test_a_restarted_up_serves_the_recorded_release_not_the_newest_commit(stack: GuardStack) -> None:
    recorded = serving(stack)
    broken = stack.source / "src" / "steadylink" / "web" / "redirect.py"
    git(stack.source, "checkout", "-q", "main")
    broken.write_text(broken.read_text() + "\nraise RuntimeError('a commit nobody released')\n")
    git(stack.source, "commit", "-qam", "a commit the gates would reject")
    stack.stop()
    stack.start()
    assert serving(stack) == recorded
    assert worker_python(stack, recorded).startswith(str(stack.data_dir / "releases" / recorded))
    assert "first release" not in up_log(stack).split("stopping")[-1]  # nothing was built on the restart
