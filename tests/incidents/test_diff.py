"""The release diff narrowed to the failing frame, said in the words that changed."""

from __future__ import annotations

from pathlib import Path

from steadylink.incidents.diff import Change, changed_lines, narrow, nearest_changes


def test_only_the_differing_words_are_said() -> None:
    assert narrow("    data = json.loads(body)", "    data = json.load(body)") == ("json.loads", "json.load")
    assert narrow("", "    raise RuntimeError('x')") == ("", "raise RuntimeError('x')")
    assert Change("application.py", 20, "data = json.load(body)", "data = json.loads(body)").summary == (
        "application.py:20  json.load → json.loads"
    )


def test_the_change_nearest_the_failing_line_comes_first(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for tree in (old, new):
        (tree / "src" / "app").mkdir(parents=True)
    lines = [f"x{n} = {n}" for n in range(1, 60)]
    (old / "src" / "app" / "views.py").write_text("\n".join(lines) + "\n")
    changed = list(lines)
    changed[4] = "x5 = 500"
    changed[40] = "x41 = json.load(body)"
    (new / "src" / "app" / "views.py").write_text("\n".join(changed) + "\n")
    (old / "README.py").write_text("a = 1\n")
    (new / "README.py").write_text("a = 2\n")
    changes = changed_lines(old, new)
    assert {(c.file, c.line) for c in changes} == {
        ("app/views.py", 5),
        ("app/views.py", 41),
        ("README.py", 1),
    }
    nearest = nearest_changes(changes, file="app/views.py", line=43)
    assert [c.summary for c in nearest] == [
        "app/views.py:41  41 → json.load(body)",
        "app/views.py:5  5 → 500",
        "README.py:1  1 → 2",
    ]
