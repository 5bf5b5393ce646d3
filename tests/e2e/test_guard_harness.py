"""The guard harness cleans up after itself: a start that times out stops `up`, work folders go."""

from __future__ import annotations

import pytest
from tests.e2e.guard_harness import WORK_DIRS, GuardStack, make_source_repo, remove_work_dirs, short_tmp


def test_a_start_that_times_out_stops_what_it_started() -> None:
    workdir = short_tmp()
    stack = GuardStack(workdir, make_source_repo(workdir), {})
    with pytest.raises(AssertionError):
        stack.start(timeout=0.5)  # the first `up` builds a release: far longer than this
    assert stack.process is not None and stack.process.poll() is not None  # stopped, not left running
    assert stack.stop() == []
    assert workdir in WORK_DIRS
    remove_work_dirs(workdir)
    assert not workdir.exists() and workdir not in WORK_DIRS
