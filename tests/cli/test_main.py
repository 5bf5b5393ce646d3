"""The root command: options, the registry of groups, and the one place errors are printed."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from steadylink.cli.main import COMMAND_GROUPS, SteadylinkGroup, app, command_names, register_all
from steadylink.errors import NotFound

from .conftest import Invoke

OUR_COMMANDS = {"serve", "links", "keys", "db", "import", "export", "backup", "restore"}


def test_help_lists_every_command(cli: Invoke) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for name in OUR_COMMANDS:
        assert name in result.stdout


def test_version(cli: Invoke) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("steadylink ")


def test_every_group_registers_through_the_registry() -> None:
    assert set(command_names(app)) >= OUR_COMMANDS
    assert all(hasattr(group, "register") for group in COMMAND_GROUPS)


def test_a_command_registered_twice_is_refused() -> None:
    from steadylink.cli import links

    target = typer.Typer()
    with pytest.raises(RuntimeError, match="links"):
        register_all(target, (links, links))


def _app_raising(exc: Exception) -> typer.Typer:
    broken = typer.Typer(cls=SteadylinkGroup)

    @broken.callback()
    def root() -> None: ...

    @broken.command()
    def boom() -> None:
        raise exc

    return broken


def test_expected_error_is_one_red_line_with_its_exit_code() -> None:
    result = CliRunner().invoke(_app_raising(NotFound("No link with code 'x'.")), ["boom"])
    assert result.exit_code == 1
    assert result.stderr == "error: No link with code 'x'.\n"
    assert result.stdout == ""


def test_unexpected_error_gives_a_short_line_and_the_debug_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STEADYLINK_DEBUG", raising=False)
    result = CliRunner().invoke(_app_raising(RuntimeError("disk on fire")), ["boom"])
    assert result.exit_code == 1
    assert "error: unexpected RuntimeError: disk on fire" in result.stderr
    assert "STEADYLINK_DEBUG=1" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEADYLINK_DEBUG", "1")
    result = CliRunner().invoke(_app_raising(RuntimeError("disk on fire")), ["boom"])
    assert isinstance(result.exception, RuntimeError)


def test_usage_errors_keep_exit_code_2(cli: Invoke) -> None:
    result = cli("links", "create")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_bad_config_is_an_error_line_not_a_trace(cli: Invoke, tmp_path: object) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "steadylink.toml"
    config.write_text("[links]\ncode_lenght = 8\n")
    result = cli("--config", str(config), "links", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Unknown setting 'links.code_lenght'")
    assert "Traceback" not in result.stderr


def _command_paths(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    commands = getattr(group, "commands", {})
    paths: list[tuple[str, ...]] = []
    for name, command in commands.items():
        paths += _command_paths(command, (*prefix, name)) if hasattr(command, "commands") else [(*prefix, name)]
    return paths


def test_root_options_also_work_after_every_command(tmp_path: object) -> None:
    group = typer.main.get_command(app)
    paths = _command_paths(group)
    assert ("keys", "create") in paths and ("up",) in paths
    runner = CliRunner()
    for path in paths:
        for option in (["--data-dir", "D"], ["--database=sqlite:///x.db"], ["--config", "c.toml"]):
            result = runner.invoke(app, [*path, *option, "--help"])
            assert result.exit_code == 0, (path, option, result.output)


def test_a_root_option_after_the_command_reaches_the_command(tmp_path: Path) -> None:
    data = tmp_path / "after"
    result = CliRunner().invoke(app, ["keys", "create", "--role", "viewer", "--name", "n", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert (data / "links.db").exists()


def test_hoisting_stops_at_the_end_of_options() -> None:
    from steadylink.cli.main import hoist_root_options

    assert hoist_root_options(["links", "list", "--data-dir", "D", "--limit", "3"]) == [
        "--data-dir", "D", "links", "list", "--limit", "3",
    ]  # fmt: skip
    assert hoist_root_options(["links", "create", "--", "--config"]) == ["links", "create", "--", "--config"]
    assert hoist_root_options(["up", "--config=c.toml"]) == ["--config=c.toml", "up"]
