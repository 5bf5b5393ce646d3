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

GAP = 2  # spaces between the columns of ``print_fitted_table``


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


def print_fitted_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], *, console: Console | None = None
) -> None:
    """A table whose columns are never cut or squeezed to nothing, except the last one.

    Every column but the last is as wide as its widest value; the last takes what a
    terminal has left (cut with an ellipsis, never below its header). Written to a pipe,
    nothing is cut: a pipe has no width (``COLUMNS`` is ignored there). Laid out here,
    not by rich's table, which drops whole columns when a terminal is too narrow.
    """
    console = console or out()
    widths = [max([len(column), *(len(str(row[i])) for row in rows)]) for i, column in enumerate(columns)]
    fixed = sum(widths[:-1]) + GAP * (len(widths) - 1)
    if console.is_terminal:
        widths[-1] = max(len(columns[-1]), min(widths[-1], console.width - fixed))

    def line(values: Sequence[str]) -> str:
        cells = [str(v).ljust(w) for v, w in zip(values[:-1], widths, strict=False)]
        last = str(values[-1])
        if len(last) > widths[-1]:
            last = last[: widths[-1] - 1] + "…"
        return (" " * GAP).join([*cells, last]).rstrip()

    console.print(Text(line(columns), style="bold"), soft_wrap=True)
    console.print(Text("-" * (fixed + widths[-1])), soft_wrap=True)
    for row in rows:
        console.print(Text(line(row)), soft_wrap=True)
