"""The guard commands' refusals: one clear sentence, a non-zero exit, nothing started."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.conftest import Invoke


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_commands_that_need_a_guard_say_how_to_start_one(cli: Invoke) -> None:
    for args in (["status"], ["releases"], ["deploy", "main"], ["rollback"], ["approve", "x"]):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "No guard runs" in result.output and "steadylink up" in result.output
        assert "Traceback" not in result.output


def test_up_refuses_a_busy_ops_port_naming_it(cli: Invoke, busy_port: int, data_dir: Path) -> None:
    result = cli("up", "--port", "1", "--ops-port", str(busy_port))
    assert result.exit_code == 2
    assert f"Port {busy_port}" in result.output and "in use" in result.output
    assert not (data_dir / "run" / "guard.json").exists()


def test_up_refuses_a_source_that_is_not_a_git_checkout(cli: Invoke, tmp_path: Path) -> None:
    result = cli("up", "--source", str(tmp_path))
    assert result.exit_code == 2 and "not a git checkout" in result.output


def test_a_corrupt_config_file_stops_every_command(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "steadylink.toml").write_text("[release\nbake_seconds = 1")
    for args in (["up"], ["status"], ["deploy", "main"]):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "not valid TOML" in result.output and "Traceback" not in result.output


def test_a_bad_setting_names_itself(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "steadylink.toml").write_text("[release]\ncanary_steps = [50, 5]\n")
    result = cli("status")
    assert result.exit_code == 2 and "canary_steps" in result.output
