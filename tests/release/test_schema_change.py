"""Naming a release's migrations and what they break, for the operator."""

from pathlib import Path

from steadylink.release.schema_change import applied_migrations, breaks_current


def fake_release(tmp_path: Path, migrations: dict[str, tuple[str | None, str]]) -> Path:
    versions = tmp_path / "venv/lib/python3.11/site-packages/steadylink/links/migrations/versions"
    versions.mkdir(parents=True)
    for revision, (down, doc) in migrations.items():
        (versions / f"{revision}_x.py").write_text(
            f'"""{doc}\n\nmore words\n"""\nrevision = "{revision}"\ndown_revision = {down!r}\n'
        )
    (versions / "broken.py").write_text("revision = (\n")
    python = tmp_path / "venv/bin/python"
    python.parent.mkdir(parents=True)
    return python


def test_the_migrations_between_two_revisions_are_named_in_order(tmp_path: Path) -> None:
    python = fake_release(
        tmp_path,
        {
            "0003": ("0002", "visit spool"),
            "0004": ("0003", "links.note: a nullable note"),
            "0005": ("0004", "drop links.owner"),
        },
    )
    assert applied_migrations(python, "0003", "0005") == [
        "0004 (links.note: a nullable note)",
        "0005 (drop links.owner)",
    ]
    assert applied_migrations(python, "0005", "0005") == []
    assert applied_migrations(tmp_path / "elsewhere/bin/python", "0003", "0005") == []


def test_what_broke_is_said_in_the_current_release_s_own_words() -> None:
    log = (
        "starting\nerror: This release cannot serve this database: the schema is at revision 0004, "
        "newer than this release knows (its newest is 0003), and a migration broke what it reads: "
        "column links.owner is missing.\n"
    )
    said = breaks_current(["0004 (drop links.owner)"], "20260101000000-abc1234", log)
    assert said.startswith(
        "migration 0004 (drop links.owner) breaks the current release 20260101000000-abc1234, "
        "which still serves production: This release cannot serve this database"
    )
    assert "column links.owner is missing" in said and "bug in steadylink" not in said
    assert "Expand in this release" in said
