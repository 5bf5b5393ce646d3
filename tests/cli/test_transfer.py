"""``steadylink import`` and ``steadylink export`` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Invoke


def _codes(cli: Invoke) -> list[str]:
    return sorted(r["code"] for r in json.loads(cli("links", "list", "--json").stdout)["items"])


def test_export_then_import_into_an_empty_store(cli: Invoke, tmp_path: Path) -> None:
    for code in ("one", "two"):
        assert cli("links", "create", f"https://example.com/{code}", "--code", code).exit_code == 0
    out = tmp_path / "links.json"
    exported = cli("export", "--output", str(out))
    assert exported.exit_code == 0
    assert "exported 2, skipped 0" in exported.stderr
    records = json.loads(out.read_text())
    for code in ("one", "two"):
        assert cli("links", "delete", code, "--yes").exit_code == 0
    imported = cli("import", str(out))
    assert imported.exit_code == 0, imported.stderr
    assert "imported 2, skipped 0 (json)" in imported.stdout
    assert json.loads(cli("export").stdout) == records


def test_export_csv_to_stdout(cli: Invoke) -> None:
    cli("links", "create", "https://example.com/", "--code", "c1")
    result = cli("export", "--format", "csv")
    assert result.stdout.splitlines() == [
        "code,url,created_at,expires_at,max_visits,visits,is_disabled",
        "c1,https://example.com/,2026-01-01T00:00:00Z,,,0,false",
    ]


def test_half_broken_import_writes_nothing(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "links.csv"
    path.write_text("code,url\nfine,https://example.com/\nbad,ftp://example.com/\n")
    result = cli("import", str(path))
    assert result.exit_code == 2
    assert "warning: line 3: Only http and https" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: Nothing was imported: 1 row(s) have problems")
    assert "Traceback" not in result.stderr
    assert _codes(cli) == []


def test_dry_run_checks_and_writes_nothing(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "urls.json"
    path.write_text(
        json.dumps({"a": {"url": "https://example.com/a"}, "b": {"url": "https://example.com/b"}})
    )
    result = cli("import", str(path), "--dry-run")
    assert result.exit_code == 0
    assert "dry run (urls-json): would import 2, skipped 0, problems 0" in result.stdout
    assert _codes(cli) == []


def test_existing_codes_refuse_the_file_unless_skipped(cli: Invoke, tmp_path: Path) -> None:
    cli("links", "create", "https://example.com/old", "--code", "a")
    path = tmp_path / "urls.json"
    path.write_text(
        json.dumps({"a": {"url": "https://example.com/a"}, "b": {"url": "https://example.com/b"}})
    )
    refused = cli("import", str(path))
    assert refused.exit_code == 2
    assert "already exist" in refused.stderr
    assert _codes(cli) == ["a"]
    skipped = cli("import", str(path), "--skip-existing")
    assert skipped.exit_code == 0
    assert "imported 1, skipped 1" in skipped.stdout
    assert _codes(cli) == ["a", "b"]


def test_original_app_folder_with_files(cli: Invoke, tmp_path: Path, data_dir: Path) -> None:
    folder = tmp_path / "shortener"
    (folder / "static" / "user_files").mkdir(parents=True)
    (folder / "static" / "user_files" / "menu.pdf").write_bytes(b"%PDF menu")
    (folder / "urls.json").write_text(
        json.dumps(
            {"nike": {"url": "https://nike.com"}, "menu": {"file": "menu.pdf"}, "lost": {"file": "x.doc"}}
        )
    )
    result = cli("import", str(folder / "urls.json"))
    assert result.exit_code == 0, result.stderr
    assert "skip key 'lost': file 'x.doc' not found" in result.stderr
    assert "imported 2, skipped 1 (urls-json)" in result.stdout
    menu = json.loads(cli("links", "show", "menu", "--json").stdout)
    assert menu["kind"] == "file" and menu["file"]["name"] == "menu.pdf"
    assert any((data_dir / "files").rglob("*"))


def test_missing_file_is_exit_2(cli: Invoke, tmp_path: Path) -> None:
    result = cli("import", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "does not exist" in result.stderr
