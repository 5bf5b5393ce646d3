"""Nothing undocumented: every setting is in steadylink.example.toml, every command in README.md."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import typer

from steadylink.cli.main import app
from steadylink.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "steadylink.example.toml"
README = ROOT / "README.md"


def setting_names() -> list[str]:
    """Every setting as ``key`` or ``section.key``."""
    names = []
    for f in dataclasses.fields(Settings):
        value = getattr(Settings(), f.name)
        if dataclasses.is_dataclass(value):
            names += [f"{f.name}.{inner.name}" for inner in dataclasses.fields(value)]
        else:
            names.append(f.name)
    return names


def documented_settings(text: str) -> set[str]:
    """Keys set or shown commented-out in the example file, with their section."""
    found, section = set(), ""
    for line in text.splitlines():
        if header := re.fullmatch(r"\[(\w+)\]", line.strip()):
            section = header.group(1) + "."
        elif key := re.match(r"#?\s?(\w+) = ", line):
            found.add(section + key.group(1))
    return found


def command_paths(command: object, prefix: str = "steadylink") -> list[str]:
    """``steadylink links create`` and the like, for every command (typer vendors click)."""
    subcommands: dict[str, object] | None = getattr(command, "commands", None)
    if subcommands is not None:
        paths = []
        for name, sub in subcommands.items():
            paths += command_paths(sub, f"{prefix} {name}")
        return paths
    return [prefix]


def test_every_setting_is_in_the_example_file() -> None:
    missing = sorted(set(setting_names()) - documented_settings(EXAMPLE.read_text()))
    assert not missing, f"add {missing} to steadylink.example.toml"


def test_the_example_file_states_the_true_defaults() -> None:
    assert load_settings(EXAMPLE, environ={}) == Settings()


def test_every_command_is_in_the_readme() -> None:
    section = re.search(r"^#+ [^\n]*Commands[^\n]*$(.*?)(?=^#+ |\Z)", README.read_text(), re.M | re.S)
    assert section is not None, "README.md needs a Commands section"
    commands = command_paths(typer.main.get_command(app))
    missing = [c for c in commands if c not in section.group(1)]
    assert not missing, f"document {missing} in README.md's Commands section"
