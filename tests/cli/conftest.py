"""The CLI runner with a fresh data dir, a fake clock and no STEADYLINK_* from outside."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from steadylink.cli.main import app
from steadylink.cli.state import CliState
from steadylink.clock import FakeClock

Invoke = Callable[..., Result]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(tmp_path: Path, data_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    for name in list(os.environ):
        if name.startswith("STEADYLINK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./steadylink.toml
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, database: str | None = None) -> Result:
        root = ["--data-dir", str(data_dir)]
        if database:
            root += ["--database", database]
        return runner.invoke(app, [*root, *args], input=input, obj=CliState(clock=clock))

    return invoke
