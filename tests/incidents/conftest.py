from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.conftest import Invoke, cli, data_dir

from steadylink.clock import FakeClock
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.watch.journal import Journal

__all__ = ["Invoke", "cli", "data_dir"]


class Told:
    """Subscribers that remember what they were told."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def tell(self, title: str, body: str) -> None:
        self.messages.append((title, body))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal(tmp_path: Path, clock: FakeClock) -> Iterator[Journal]:
    j = Journal.for_data_dir(tmp_path, clock=clock)
    yield j
    j.close()


@pytest.fixture
def told() -> Told:
    return Told()


@pytest.fixture
def incidents(tmp_path: Path, clock: FakeClock, journal: Journal, told: Told) -> Iterator[Incidents]:
    store = IncidentStore.for_data_dir(tmp_path, clock=clock)
    yield Incidents(store, journal, told)
    store.close()
