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


def test_deploy_names_what_expect_change_takes(cli: Invoke) -> None:
    result = cli("deploy", "main", "--expect-change", "latency")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--expect-change takes differential, writes, data, not 'latency'" in result.output


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


RECORDS = [
    {"id": f"2026113021{i:02d}00-{sha}", "verdict": verdict, "caught_by": caught, "ref": ref,
     "subject": f"release number {i}: " + "a subject long enough to be cut somewhere " * 3}
    for i, (sha, verdict, caught, ref) in enumerate([
        ("d9d5dc398aed", "promoted", None, "steadylink 0.1.0 (installed)"),
        ("84a1c3d", "rejected", "stage-current-on-new-schema", "contract"),
        ("20c96dc", "rolled_back", "operator rollback", "expand"),
        ("aaaaaaa", "rejected", "stage-start", "feature/a-long-branch-name"),
    ])
]  # fmt: skip


def _rendered(console_kwargs: dict[str, object]) -> list[str]:
    import io

    from rich.console import Console

    from steadylink.cli.guard import print_releases

    buffer = io.StringIO()
    print_releases(RECORDS, console=Console(file=buffer, **console_kwargs))  # type: ignore[arg-type]
    return buffer.getvalue().splitlines()


@pytest.mark.parametrize(
    ("where", "console_kwargs", "max_width"),
    [
        ("piped", {}, None),
        ("piped, COLUMNS=200", {"width": 200}, None),
        ("a 120-column terminal", {"width": 120, "force_terminal": True, "color_system": None}, 120),
        ("a 200-column terminal", {"width": 200, "force_terminal": True, "color_system": None}, 200),
    ],
)
def test_releases_columns_are_never_cut_or_empty(
    where: str, console_kwargs: dict[str, object], max_width: int | None
) -> None:
    lines = _rendered(console_kwargs)
    header = lines[0]
    for name in ("release", "verdict", "caught by", "ref", "subject"):
        assert name in header, (where, header)
    for record in RECORDS:
        [line] = [line for line in lines if line.startswith(str(record["id"]))]
        shown = "rolled back" if record["verdict"] == "rolled_back" else str(record["verdict"])
        for value in (shown, record["caught_by"] or "-", record["ref"]):
            assert f" {value} " in f"{line} ", (where, value, line)
        if max_width is None:
            assert str(record["subject"]).rstrip() in line, (where, line)  # a pipe gets everything
        else:
            assert len(line) <= max_width and "release number" in line, (where, line)
