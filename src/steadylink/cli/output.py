"""How the CLI prints: records as JSON or rich tables, notes and errors on stderr.

Consoles are made per call, so a test runner that swaps ``sys.stdout`` and
``sys.stderr`` sees everything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def out() -> Console:
    return Console(file=sys.stdout, soft_wrap=True, highlight=False)


def err() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def print_json(value: Any) -> None:
    """Plain JSON on stdout, for scripts (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def print_error(message: str) -> None:
    err().print(Text(f"error: {message}", style="bold red"))


def print_warning(message: str) -> None:
    err().print(Text(f"warning: {message}", style="yellow"))


def print_note(message: str) -> None:
    """A line about what happened; stderr, so stdout stays clean for data."""
    err().print(Text(message))


def print_done(message: str) -> None:
    out().print(Text(message, style="green"))


def print_fields(fields: Mapping[str, Any], *, title: str | None = None) -> None:
    """A key-value view of one record."""
    table = Table(show_header=False, box=None, title=title, title_justify="left", pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in fields.items():
        table.add_row(key, shown(value))
    out().print(table)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, caption: str = "") -> None:
    table = Table(caption=caption or None, caption_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(shown(v) for v in row))
    out().print(table)


def shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return str(value)
