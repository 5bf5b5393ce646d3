"""The incident commands without a running guard: reads from ops.db, writes refused in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

from steadylink.clock import FakeClock
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore

from .conftest import Invoke


def test_reading_works_while_no_guard_runs(cli: Invoke, data_dir: Path, clock: FakeClock) -> None:
    assert cli("incidents", "--json").output.strip() == "[]"
    store = IncidentStore.for_data_dir(data_dir, clock=clock)
    opened = Incidents(store).open(title="[bold]Redirects[/bold] <b>fail</b>", by="alice")
    store.close()
    listed = cli("incidents")
    assert listed.exit_code == 0 and "[bold]Redirects[/bold]" in listed.output and "<b>fail</b>" in listed.output
    shown = cli("incident", str(opened.id), "--json")
    assert json.loads(shown.output)["title"] == "[bold]Redirects[/bold] <b>fail</b>"


def test_bad_input_is_one_sentence(cli: Invoke, data_dir: Path, clock: FakeClock) -> None:
    for args, code, words in (
        (("incident", "x"), 2, "not an incident id"),
        (("incident", "0"), 2, "not an incident id"),
        (("incident", "7"), 1, "no incidents yet"),
        (("incident", "1", "shout", "x"), 2, "Unknown action"),
        (("incident", "1", "note"), 2, "needs a value"),
        (("incident", "open"), 2, "Say what happened"),
        (("incident", "1", "note", "hello"), 1, "No guard runs"),
        (("incident", "1", "correct"), 2, "needs a value"),
        (("incident", "1", "correct", "acknowledged"), 2, "needs the moment's time"),
        (("incident", "1", "correct", "acknowledged", "2026-01-01T00:00:00Z", "--reason", "x"), 1, "No guard runs"),
        (("errors", "--since", "soon"), 2, "--since"),
    ):
        result = cli(*args)
        assert result.exit_code == code, (args, result.output)
        assert words in result.output and "Traceback" not in result.output


def test_errors_of_a_foreign_log(cli: Invoke, tmp_path: Path) -> None:
    log = tmp_path / "eb.log"
    log.write_text(
        "2023-09-20T19:00:01Z web: Traceback (most recent call last):\n"
        '2023-09-20T19:00:01Z web:   File "/var/app/current/application.py", line 20, in index\n'
        "2023-09-20T19:00:01Z web:     data = json.load(body)\n"
        "2023-09-20T19:00:01Z web: AttributeError: 'str' object has no attribute 'read'\n"
    )
    result = cli("errors", "--file", str(log))
    assert result.exit_code == 0 and "1 x AttributeError" in result.output
    assert "application.py:20  data = json.load(body)" in result.output
    binary = tmp_path / "bin.log"
    binary.write_bytes(b"\0" * 100)
    result = cli("errors", "--file", str(binary))
    assert result.exit_code == 2 and "binary" in result.output
