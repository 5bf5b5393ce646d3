"""``steadylink backup`` and ``steadylink restore``: verified snapshots of the links database."""

from __future__ import annotations

from pathlib import Path

import typer

from steadylink.cli.output import print_done, print_fields, print_note, print_warning
from steadylink.cli.state import state_of
from steadylink.links.backup import create_backup, restore_backup, verify_backup
from steadylink.watch.opsdb import backup_ops_db


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
    report = create_backup(settings=settings, clock=state.clock, output=output)
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
    ops = backup_ops_db(settings.data_dir, backup.path.with_name(backup.path.stem + "-ops.db"))
    if ops is not None:
        print_done(f"guard's ops.db (journal, incidents) {ops}")
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
