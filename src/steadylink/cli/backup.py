"""``steadylink backup`` and ``steadylink restore``: verified snapshots of the links database."""

from __future__ import annotations

from pathlib import Path

import typer

from steadylink.cli.output import print_done, print_fields, print_note, print_warning
from steadylink.cli.state import state_of
from steadylink.links.backup import restore_backup, verify_backup
from steadylink.watch.backups import journal_for_backups, recorded_backup


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


def backup_command(
    ctx: typer.Context,
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Where to write it [default: <data-dir>/backups/links-<UTC time>.db].",
        dir_okay=False,
    ),
) -> None:
    """Write a consistent, verified snapshot of the links database (an SQLite file)."""
    state = state_of(ctx)
    settings = state.settings()
    # each attempt, good or failed, goes to the guard's journal: a failed one is a ticket
    journal = journal_for_backups(settings, state.clock)
    try:
        done = recorded_backup(
            settings=settings, clock=state.clock, journal=journal, output=output, ops_copy=True
        )
    finally:
        if journal is not None:
            journal.close()
    report = done.report
    backup = report.backup
    print_done(f"backup {backup.path}")
    print_fields(
        {
            "size": f"{backup.size} bytes",
            "links": backup.links,
            "revision": backup.revision,
            "verified": "integrity_check ok, revision at head, link count equal",
        }
    )
    if done.ops_copy is not None:
        print_done(f"guard's ops.db (journal, incidents) {done.ops_copy}")
    print_note(
        f"Uploaded files are not in the backup: copy {settings.files_dir} with rsync "
        "(content-addressed, never changed once written)."
    )
    if report.missing_files:
        print_warning(
            f"{report.missing_files} of {report.file_links} file links have no file under "
            f"{settings.files_dir}."
        )


def restore_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A backup written by `steadylink backup`.", dir_okay=False),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Replace the links database's contents with a backup, in one transaction."""
    state = state_of(ctx)
    settings = state.settings()
    checked = verify_backup(file)  # a corrupt or foreign file is refused before any question
    if not yes:
        typer.confirm(
            f"Replace every link in the database with the {checked.links} links of {file}?",
            abort=True,
        )
    report = restore_backup(settings=settings, clock=state.clock, source=file)
    print_done(f"restored {report.restored.links} links from {file}")
    if report.safety_backup is not None:
        print_note(f"the data before the restore is in {report.safety_backup.path}")
