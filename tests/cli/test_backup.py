"""``steadylink backup`` and ``steadylink restore`` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

from steadylink.watch.journal import Journal

from .conftest import Invoke


def _codes(cli: Invoke) -> list[str]:
    return sorted(r["code"] for r in json.loads(cli("links", "list", "--json").stdout)["items"])


def _backup(cli: Invoke, *args: str) -> Path:
    result = cli("backup", *args)
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("backup ")
    return Path(first.removeprefix("backup "))


def test_backup_prints_path_size_and_count(cli: Invoke, data_dir: Path) -> None:
    cli("links", "create", "https://example.com/", "--code", "kept")
    result = cli("backup")
    assert result.exit_code == 0
    path = Path(result.stdout.splitlines()[0].removeprefix("backup "))
    assert path == (data_dir / "backups" / "links-20260101T000000Z.db").absolute()
    assert f"{path.stat().st_size} bytes" in result.stdout
    assert "links     1" in result.stdout
    assert "rsync" in result.stderr


def test_backup_to_a_chosen_file_then_restore(cli: Invoke, tmp_path: Path) -> None:
    cli("links", "create", "https://example.com/", "--code", "kept")
    path = _backup(cli, "--output", str(tmp_path / "mine.db"))
    assert path == tmp_path / "mine.db"
    cli("links", "delete", "kept", "--yes")
    cli("links", "create", "https://example.com/", "--code", "later")
    result = cli("restore", str(path), "--yes")
    assert result.exit_code == 0, result.stderr
    assert "restored 1 links" in result.stdout
    assert "pre-restore-" in result.stderr
    assert _codes(cli) == ["kept"]


def test_restore_asks_first(cli: Invoke, tmp_path: Path) -> None:
    cli("links", "create", "https://example.com/", "--code", "kept")
    path = _backup(cli)
    created = cli("links", "create", "https://example.com/", "--code", "fresh")
    assert created.exit_code == 0, created.stderr
    refused = cli("restore", str(path), input="n\n")
    assert refused.exit_code == 1
    assert _codes(cli) == ["fresh", "kept"]


def test_corrupt_restore_file_changes_nothing(cli: Invoke, tmp_path: Path, data_dir: Path) -> None:
    cli("links", "create", "https://example.com/", "--code", "kept")
    db = data_dir / "links.db"
    before = db.read_bytes()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84 + b"garbage" * 1000)
    result = cli("restore", str(junk), "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {junk}")
    assert result.stderr.count("\n") == 1
    assert db.read_bytes() == before
    assert _codes(cli) == ["kept"]


def test_foreign_restore_file_is_refused(cli: Invoke, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database")
    result = cli("restore", str(notes), "--yes")
    assert result.exit_code == 1
    assert result.stderr == f"error: {notes} is not an SQLite file, so not a steadylink backup.\n"


def test_every_backup_attempt_is_in_the_journal_and_a_failed_one_is_one_sentence(
    cli: Invoke, tmp_path: Path, data_dir: Path
) -> None:
    cli("links", "create", "https://example.com/", "--code", "kept")
    (tmp_path / "a-file").write_text("a file where a folder should be")
    failed = cli("backup", "--output", str(tmp_path / "a-file" / "links.db"))
    assert failed.exit_code == 1
    sentence = f"The backup could not be written under {tmp_path / 'a-file'}: it is not a folder."
    assert failed.stderr.strip() == f"error: {sentence}"
    _backup(cli)
    journal = Journal.for_data_dir(data_dir)
    try:
        events = journal.read(kinds=["backup"])
    finally:
        journal.close()
    assert [(e.kind, e.body.get("reason")) for e in events] == [("backup.failed", sentence), ("backup.created", None)]
    assert events[1].body["links"] == 1
