"""A report rendered from a recorded incident, checked section by section against the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from steadylink.clock import FakeClock
from steadylink.incidents.report import build_sections, render_html, render_markdown
from steadylink.incidents.report_facts import EmptyIncident, gather_facts
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.watch.opsdb import connect_ops_db

from .conftest import Invoke
from .recorded import BAD, GOOD, record_incident


def test_sections_hold_the_recorded_facts(tmp_path: Path, clock: FakeClock) -> None:
    recorded = record_incident(tmp_path, clock)
    facts = gather_facts(tmp_path, recorded.incident_id, now=clock.now())
    s = build_sections(facts)
    assert s["impact"]["Failed requests (5xx)"] == "120 (30.00%)"
    assert s["impact"]["Requests at the front door"] == "400"
    assert s["impact"]["Bad seconds"] == "3"
    assert s["impact"]["Error budget used"] == "0.05 min of 20 (0.2% of the year)"
    assert "Detected by the guard's canary/bake analysis" in s["detection"] and "3 s after" in s["detection"]
    assert "automatic rollback (canary: error ratio 50 %)" in s["recovery"]
    assert any("alice deployed main" in x for x in s["leadup"])
    assert s["changes"][0] == "application.py:20  json.loads → json.load"  # old → new, only the words
    assert s["diff_note"].startswith(f"{GOOD} → {BAD}")
    assert s["errors"][0]["count"] == 120 and "AttributeError" in s["errors"][0]["title"]
    assert "application.py:20  return json.load(body)" in s["errors"][0]["source"]
    kinds = [e["text"] for e in s["timeline"]]
    assert any("first 5xx seen" in k for k in kinds) and any("rolled back" in k for k in kinds)
    assert {(v["release"], v["step"], v["verdict"]) for v in s["verdicts"]} >= {
        (BAD, "canary", "failed"),
        (BAD, "tests", "passed"),
    }
    assert s["root_cause"].startswith("PROMPT:") and "json.load" in s["root_cause"]
    assert s["whys"][0].startswith("Why did users get errors? Because AttributeError")
    assert sum(w.startswith("PROMPT:") for w in s["whys"]) == 4
    assert facts.chart_png is not None and facts.chart_png.startswith(b"\x89PNG")


def test_people_s_words_win_and_are_escaped(tmp_path: Path, clock: FakeClock) -> None:
    recorded = record_incident(tmp_path, clock)
    store = IncidentStore.for_data_dir(tmp_path, clock=clock)
    Incidents(store).analyse(
        recorded.incident_id, by="bob", root_cause="<script>alert(1)</script> no test for loads"
    )
    store.close()
    facts = gather_facts(tmp_path, recorded.incident_id, now=clock.now(), with_chart=False)
    sections = build_sections(facts)
    markdown = render_markdown(sections, chart_name=None)
    html = render_html(sections, chart_png=b"\x89PNG fake")
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt; no test for loads" in markdown and "<script>" not in markdown
    )
    assert "<script" not in html and "&lt;script&gt;" in html and "data:image/png;base64," in html
    for heading in ("Summary", "Leadup", "Fault", "Impact", "Detection", "Response", "Recovery", "Timeline",
                    "Top error groups", "Release diff", "Root cause", "Five whys", "Corrective actions"):  # fmt: skip
        assert f"## {heading}" in markdown and f">{heading}" in html


def test_the_cli_writes_markdown_with_the_chart_beside_it(
    tmp_path: Path, clock: FakeClock, cli: Invoke, data_dir: Path
) -> None:
    recorded = record_incident(data_dir, clock)
    result = cli("report", str(recorded.incident_id), "-o", str(tmp_path / "out" / "incident.md"))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "incident.md").read_text()
    assert "![front door error ratio and latency](incident-chart.png)" in text
    assert (tmp_path / "out" / "incident-chart.png").read_bytes().startswith(b"\x89PNG")
    result = cli(
        "report", str(recorded.incident_id), "--format", "html", "-o", str(tmp_path / "incident.html")
    )
    html = (tmp_path / "incident.html").read_text()
    assert (
        result.exit_code == 0
        and "<script" not in html
        and 'src="http' not in html
        and "data:image/png" in html
    )


def test_an_incident_without_events_gets_one_sentence(
    tmp_path: Path, clock: FakeClock, cli: Invoke, data_dir: Path
) -> None:
    store = IncidentStore.for_data_dir(data_dir, clock=clock)
    incident = Incidents(store).open(title="customers call", by="alice")
    store.close()
    with pytest.raises(EmptyIncident):
        gather_facts(data_dir, incident.id, now=clock.now())
    target = tmp_path / "r.md"
    result = cli("report", str(incident.id), "-o", str(target))
    assert result.exit_code != 0 and "no events" in result.output and not target.exists()
    result = cli("report", "42")
    assert result.exit_code == 1 and "No incident 42" in result.output
    assert cli("report", "x").exit_code == 2
    assert cli("report", str(incident.id), "--format", "pdf").exit_code == 2


def test_the_impact_is_kept_at_resolution_for_reports_after_the_figures_are_pruned(
    tmp_path: Path, clock: FakeClock
) -> None:
    recorded = record_incident(tmp_path, clock)
    store = IncidentStore.for_data_dir(tmp_path, clock=clock)
    resolved = Incidents(store).resolve(recorded.incident_id, by="bob")
    store.close()
    assert resolved.impact is not None and resolved.impact["failed_requests"] == recorded.failed
    conn = connect_ops_db(tmp_path / "ops.db")
    conn.execute("DELETE FROM traffic_seconds")
    conn.close()
    s = build_sections(gather_facts(tmp_path, recorded.incident_id, now=clock.now(), with_chart=False))
    assert s["impact"]["Failed requests (5xx)"] == "120 (30.00%)" and s["impact"]["Bad seconds"] == "3"


def test_markdown_makes_no_link_or_image_of_people_s_words_and_shows_code_as_written(
    tmp_path: Path, clock: FakeClock
) -> None:
    recorded = record_incident(tmp_path, clock)
    store = IncidentStore.for_data_dir(tmp_path, clock=clock)
    Incidents(store).note(
        recorded.incident_id, by="mallory", text="[help](javascript:alert(1)) ![x](https://tracker.example/p.png)"
    )
    store.close()
    sections = build_sections(gather_facts(tmp_path, recorded.incident_id, now=clock.now(), with_chart=False))
    sections["fault"].append("web/redirect.py:20  if n < len(`codes`):")  # a failing line of code
    markdown = render_markdown(sections, chart_name=None)
    assert "\\[help\\](javascript:alert(1)) !\\[x\\](https://tracker.example/p.png)" in markdown
    assert "](javascript:" not in markdown.replace("\\]", "") and "![x](" not in markdown
    assert "- ``web/redirect.py:20  if n < len(`codes`):``" in markdown  # in code: no entity, no escape
    assert "    application.py:20  json.loads → json.load" in markdown  # the changed line, a code block


def test_a_moment_corrected_to_the_second_reads_0_s_not_minus_0(tmp_path: Path, clock: FakeClock) -> None:
    recorded = record_incident(tmp_path, clock)  # detected by the rollback at t0+8 s
    conn = connect_ops_db(tmp_path / "ops.db")
    with conn:  # the rollback, and the incident it opened, at 8.4 s
        conn.execute("UPDATE events SET at_ms = at_ms + 400 WHERE kind = 'release.rolled_back'")
        conn.execute("UPDATE incidents SET opened_at_ms = opened_at_ms + 400")
    conn.close()
    store = IncidentStore.for_data_dir(tmp_path, clock=clock)
    Incidents(store).correct(recorded.incident_id, moment="acknowledged", at="2026-01-01 00:00:08", by="bob",
                             reason="acked as the page came")  # fmt: skip
    store.close()
    s = build_sections(gather_facts(tmp_path, recorded.incident_id, now=clock.now(), with_chart=False))
    assert s["response"].startswith("Acknowledged at 2026-01-01 00:00:08 UTC (0 s after detection).")
