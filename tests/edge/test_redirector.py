"""The guard's side of edge redirects: the visit reader it runs and replaces."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.edge.edge_harness import wait_for

from steadylink.edge import EdgeConfig
from steadylink.edge.process import is_process_running
from steadylink.edge.redirector import EdgeRedirects
from steadylink.links.sql_store import SqlStore


def test_a_stopped_reader_is_seen_and_replaced_by_a_running_one(tmp_path: Path, sqlite_store: SqlStore) -> None:
    config = EdgeConfig(run_dir=tmp_path / "run")
    config.run_dir.mkdir()

    def no_runtime() -> None:
        raise AssertionError("the reader needs no HAProxy")

    redirects = EdgeRedirects(
        config, sqlite_store, no_runtime, data_dir=tmp_path, limit=10, flush_seconds=0.2  # type: ignore[arg-type]
    )
    first = redirects.ensure_reader()
    try:
        assert not redirects.is_reader_stopped()
        os.kill(first, signal.SIGSTOP)
        wait_for(redirects.is_reader_stopped, 5)
        second = redirects.replace_reader()
        assert second != first and not is_process_running(first)
        assert redirects.is_reader_running() and not redirects.is_reader_stopped()
    finally:
        redirects.stop_reader()
        if is_process_running(first):
            os.kill(first, signal.SIGKILL)
    assert not redirects.is_reader_running()
