"""``steadylink import`` and ``steadylink export``: links in CSV, JSON or the original urls.json."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import typer

from steadylink.cli.output import print_done, print_note, print_warning
from steadylink.cli.state import ready_store, state_of
from steadylink.cli.watch import export_prometheus_rules
from steadylink.links.transfer import (
    ExportResult,
    Format,
    apply_import,
    export_links,
    plan_import,
)


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
    app.command("export")(export_command)


def import_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The file to read.", dir_okay=False),
    fmt: Format = typer.Option(Format.AUTO, "--format", help="auto tells by name and content."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row, write nothing."),
    skip_existing: bool = typer.Option(
        False, "--skip-existing", help="Leave out codes that exist instead of refusing the file."
    ),
) -> None:
    """Import links; every row is checked first, and nothing is written if one is wrong."""
    state = state_of(ctx)
    settings = state.settings()
    with ready_store(settings) as store:
        plan = plan_import(
            store=store,
            settings=settings,
            clock=state.clock,
            source=file,
            fmt=fmt,
            skip_existing=skip_existing,
        )
        for problem in [*plan.problems, *plan.conflicts]:
            print_warning(str(problem))
        for skipped in plan.skipped:
            print_note(f"skip {skipped}")
        if dry_run:
            verdict = "would import" if not (plan.problems or plan.conflicts) else "cannot import"
            print_done(
                f"dry run ({plan.format.value}): {verdict} {len(plan.links)}, "
                f"skipped {len(plan.skipped)}, problems {len(plan.problems) + len(plan.conflicts)}"
            )
            if plan.problems or plan.conflicts:
                raise typer.Exit(2)
            return
        result = apply_import(store=store, files=state.files(), plan=plan, skip_existing=skip_existing)
    late = result.skipped[len(plan.skipped) :]
    for skipped in late:
        print_note(f"skip {skipped}")
    print_done(f"imported {result.imported}, skipped {len(result.skipped)} ({plan.format.value})")


class Exportable(StrEnum):
    LINKS = "links"
    PROMETHEUS_RULES = "prometheus-rules"


def export_command(
    ctx: typer.Context,
    what: Exportable = typer.Argument(
        Exportable.LINKS, help="links, or prometheus-rules (the watch's alert rules for Prometheus)."
    ),
    fmt: Format = typer.Option(Format.JSON, "--format", help="csv, json or urls-json."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file (atomically) instead of stdout."
    ),
) -> None:
    """Export every link, oldest first (or, with prometheus-rules, the watch's rules)."""
    settings = state_of(ctx).settings()
    if what is Exportable.PROMETHEUS_RULES:
        export_prometheus_rules(settings, output)
        return
    with ready_store(settings) as store:
        if output is None:
            result = export_links(store=store, settings=settings, fmt=fmt, out=sys.stdout)
        else:
            result = _export_to_file(
                output,
                lambda out: export_links(store=store, settings=settings, fmt=fmt, out=out),
            )
    for skipped in result.skipped:
        print_warning(f"not exported: {skipped}")
    where = f" to {output}" if output else ""
    print_note(f"exported {result.exported}, skipped {len(result.skipped)}{where}")


def _export_to_file(output: Path, write: Callable[[TextIO], ExportResult]) -> ExportResult:
    """Write to a temporary file next to ``output`` and rename it: never a half-written export."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            result = write(out)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result
