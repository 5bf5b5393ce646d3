"""Fixtures: a real HAProxy on a free loopback port, two upstreams on slot sockets."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.edge.edge_harness import (
    FrontDoor,
    Upstream,
    free_port,
    running_edge,
    start_upstream,
    stop_upstream,
)

from steadylink.edge import EdgeConfig, EdgeProcess


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Short on purpose: unix socket paths are limited to ~104 bytes.
    path = Path(tempfile.mkdtemp(prefix="sl-edge-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def edge_config(run_dir: Path) -> EdgeConfig:
    return EdgeConfig(run_dir=run_dir, port=free_port(), slots=4, check_inter_ms=500)


@pytest.fixture
def upstreams(edge_config: EdgeConfig) -> Iterator[list[Upstream]]:
    started = [start_upstream(edge_config.slot_socket(slot), f"up{slot}") for slot in (0, 1)]
    yield started
    for upstream in started:
        stop_upstream(upstream)


@pytest.fixture
def edge(edge_config: EdgeConfig) -> Iterator[EdgeProcess]:
    with running_edge(edge_config) as process:
        yield process


@pytest.fixture
def front_door(edge: EdgeProcess) -> Iterator[FrontDoor]:
    client = FrontDoor(edge.config.port)
    yield client
    client.close()
