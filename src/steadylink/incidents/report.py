"""``steadylink report ID``: the post-incident report, written from the facts.

Sections as the hand-written reports had them — summary, leadup, fault,
impact, detection, response, recovery, timeline — plus the top error groups,
the release diff narrowed to the failing frame, the verdicts of gates,
staging and canary, and a chart. Root cause, five whys and corrective actions
are what people wrote; where they wrote nothing, facts prefill what they can
and the rest is a prompt marked ``PROMPT:``. Markdown gets the chart as a PNG
beside it; HTML is one self-contained file (the chart inline, no script).
Files are written whole (temporary file, then rename): never half a report.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from steadylink.clock import SystemClock
from steadylink.errors import InvalidInput
from steadylink.incidents.report_facts import ReportFacts, gather_facts
from steadylink.incidents.service import Incidents
from steadylink.settings import Settings

FORMATS = ("md", "html")
PROMPT = "PROMPT:"


def build_sections(f: ReportFacts) -> dict[str, Any]:
    """The report as data: each section's sentences, tables and prompts (shared by both formats)."""
    inc, m, imp = f.incident, f.moments, f.impact
    deploy = f.first("deploy.started")
    rollback = f.first("release.rolled_back")
    bad = f.bad_release
    culprit = f.errors[0] if f.errors else None

    def t(at: datetime | None) -> str:
        return f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else "not recorded"

    def after(a: datetime | None, b: datetime | None) -> str:
        # whole seconds, as the moments are shown and corrected: never "-0 s"
        return f"{round((b - a).total_seconds())} s" if a and b else "unknown"

    summary = (
        f"{inc.title}. From {t(m['first_bad_signal'])} to {t(m['mitigated'] or m['resolved'])} "
        f"({imp.duration_seconds:.0f} s), {imp.failed_requests:,} of {imp.requests:,} requests "
        f"at the front door failed ({imp.failed_share:.2%}); {imp.bad_seconds} bad seconds used "
        f"{imp.budget_minutes:.2f} minutes "
        f"of the year's 20-minute error budget ({imp.budget_share:.1%})."
    )
    if bad is not None:
        summary += f" Release {bad.id} ({bad.ref}, {bad.sha[:10]}: {bad.subject!r}) was involved."
    leadup = []
    if bad is not None:
        leadup.append(
            f"{bad.created_by} deployed {bad.ref} ({bad.sha[:10]}, {bad.subject!r} by {bad.author}) "
            f"as {bad.id} at {t(bad.created_at)}."
        )
    elif deploy is not None:
        leadup.append(f"{deploy.message} at {t(deploy.at)}.")
    leadup += [
        f"{e.at:%H:%M:%S} {e.message}" for e in f.events if e.kind in ("deploy.step", "canary.weight")
    ][:20]
    fault = []
    if culprit is not None:
        fault.append(f"{culprit.count} x {culprit.title}" + (f" at {culprit.where}" if culprit.where else ""))
        fault += culprit.source_lines()[:3]
    fault += [c.summary for c in f.changes[:1]]
    detection_how = (
        "an alert"
        if f.first("alert.firing")
        else (
            "the guard's canary/bake analysis"
            if rollback is not None and rollback.body.get("automatic")
            else "a person"
        )
    )
    verdicts = [
        {
            "release": r.id,
            "step": s.name,
            "verdict": s.verdict,
            "seconds": round(s.duration_s, 1),
            "figures": ", ".join(f"{k}={v}" for k, v in s.figures.items()),
        }
        for r in f.records
        for s in r.steps
    ]
    root_cause = inc.root_cause or (
        f"{PROMPT} confirm — prefilled from the facts: release {bad.id if bad else '?'} changed "
        f"{f.changes[0].summary}; {culprit.title if culprit else 'requests failed'}."
        if f.changes
        else f"{PROMPT} what in the system made this possible?"
    )
    whys = list(inc.whys) or [
        f"Why did users get errors? Because {culprit.title if culprit else 'requests failed'}"
        + (f" in release {bad.id}." if bad else ".")
        if culprit or bad
        else f"{PROMPT} why did users get errors?",
        f"{PROMPT} why did the change contain this fault?",
        f"{PROMPT} why did the gates and staging not catch it?"
        if bad and all(s.verdict != "failed" for s in bad.steps if s.name != "canary")
        else f"{PROMPT} why?",
        f"{PROMPT} why?",
        f"{PROMPT} why? (the fifth why is usually about process)",
    ]
    actions = [a.to_json() for a in inc.actions] or [
        {
            "what": f"Add a test that exercises {f.changes[0].file}:{f.changes[0].line}"
            if f.changes
            else f"{PROMPT} a test or check that would have caught this",
            "owner": f"{PROMPT} owner",
            "state": "open",
        },
        {
            "what": f"{PROMPT} what would have made detection faster?",
            "owner": f"{PROMPT} owner",
            "state": "open",
        },
    ]
    return {
        "title": f"Post-incident report: #{inc.id} {inc.title}",
        "meta": {
            "Severity": inc.label,
            "Status": inc.status.value,
            "Opened by": inc.opened_by,
            "Releases": ", ".join(inc.releases) or "none",
            "Alerts": ", ".join(inc.alerts) or "none",
        },
        "summary": summary,
        "leadup": leadup or ["No deploy preceded it in the journal."],
        "fault": fault or ["No error group or changed line was found for this window."],
        "impact": {
            "Window": f"{t(imp.since)} to {t(imp.until)} ({imp.duration_seconds:.0f} s)",
            "Requests at the front door": f"{imp.requests:,}",
            "Failed requests (5xx)": f"{imp.failed_requests:,} ({imp.failed_share:.2%})",
            "Bad seconds": str(imp.bad_seconds),
            "Error budget used": f"{imp.budget_minutes:.2f} min of 20 ({imp.budget_share:.1%} of the year)",
        },
        "detection": f"Detected by {detection_how} at {t(m['detected'])}, "
        f"{after(m['first_bad_signal'], m['detected'])} after the first bad signal "
        f"({t(m['first_bad_signal'])}).",
        "response": (
            f"Acknowledged at {t(m['acknowledged'])} "
            f"({after(m['detected'], m['acknowledged'])} after detection). "
            if m["acknowledged"]
            else "Nobody acknowledged it before it was mitigated; the guard acted alone. "
            if m["mitigated"]
            else "Nobody has acknowledged it. "
        )
        + " ".join(f"{u.author}: {u.text}" for u in f.updates if u.kind == "note")[:2000],
        "recovery": f"Mitigated at {t(m['mitigated'])}"
        + (
            f" by {'an automatic' if rollback.body.get('automatic') else 'a'} rollback "
            f"({rollback.body.get('step', '?')}: {rollback.body.get('reason', '')})"
            if rollback
            else ""
        )
        + f"; resolved at {t(m['resolved'])}. Time to mitigate: "
        f"{after(m['first_bad_signal'], m['mitigated'])}.",
        "moments": {k.replace("_", " "): t(v) for k, v in m.items()},
        "timeline": [{"at": f"{e.at:%H:%M:%S}", "source": e.source, "text": e.text} for e in f.timeline],
        "errors": [
            {
                "count": g.count,
                "title": g.title,
                "releases": ", ".join(sorted(g.releases)) or "-",
                "first": g.first_seen or "-",
                "last": g.last_seen or "-",
                "source": "; ".join(g.source_lines()),
                "sample": g.sample[-3000:],
            }
            for g in f.errors
        ],
        "diff_note": f.diff_note,
        "changes": [c.summary for c in f.changes],
        "verdicts": verdicts,
        "root_cause": root_cause,
        "whys": whys,
        "actions": actions,
    }


def render_markdown(sections: dict[str, Any], *, chart_name: str | None) -> str:
    """Prose escaped (``_escaped``); code — failing lines, changed lines — shown as written, in code."""
    s = _escaped(sections)
    lines = [f"# {s['title']}", ""]
    lines += [f"- **{k}:** {v}" for k, v in s["meta"].items()] + ["", "## Summary", "", s["summary"], ""]
    lines += ["## Leadup", "", *[f"- {x}" for x in s["leadup"]], "", "## Fault", ""]
    lines += [
        *[
            f"- {_code(raw)}" if "  " in raw else f"- {x}"
            for raw, x in zip(sections["fault"], s["fault"], strict=True)
        ],
        "",
        "## Impact",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in s["impact"].items()]
    lines += ["", "## Detection", "", s["detection"], "", "## Response", "", s["response"], ""]
    lines += ["## Recovery", "", s["recovery"], "", "## Chart", ""]
    lines += [
        f"![front door error ratio and latency]({chart_name})"
        if chart_name
        else "(The chart is written beside the report with `-o FILE`.)",
        "",
    ]
    lines += ["## Timeline (UTC)", "", "| time | who | what |", "|---|---|---|"]
    lines += [f"| {e['at']} | {_cell(e['source'])} | {_cell(e['text'])} |" for e in s["timeline"]]
    lines += ["", "## Top error groups", ""]
    for g, raw in zip(s["errors"], sections["errors"], strict=True):
        lines.append(f"- **{g['count']} x** {g['title']}")
        if raw.get("source"):
            lines.append(f"  - source: {_code(raw['source'])}")
    if not s["errors"]:
        lines.append("- No errors in the workers' logs for this window.")
    changed = [f"    {' '.join(c.splitlines())}" for c in sections["changes"]]  # an indented code block
    lines += ["", "## Release diff", "", s["diff_note"], "", *changed, ""]
    lines += [
        "## Gates, staging and canary",
        "",
        "| release | step | verdict | seconds | figures |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {v['release']} | {v['step']} | {v['verdict']} | {v['seconds']} | {_cell(v['figures'])} |"
        for v in s["verdicts"]
    ] or ["| - | - | - | - | - |"]
    lines += ["", "## Root cause", "", s["root_cause"], "", "## Five whys", ""]
    lines += [f"{n}. {w}" for n, w in enumerate(s["whys"], start=1)]
    lines += ["", "## Corrective actions", "", "| action | owner | state |", "|---|---|---|"]
    lines += [f"| {_cell(a['what'])} | {_cell(a['owner'])} | {a['state']} |" for a in s["actions"]]
    return "\n".join(lines) + "\n"


def render_html(s: dict[str, Any], *, chart_png: bytes | None) -> str:
    env = Environment(
        loader=PackageLoader("steadylink.incidents", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    chart = base64.b64encode(chart_png).decode() if chart_png else None
    return env.get_template("report.html").render(s=s, chart=chart, prompt=PROMPT)


def render_report(incidents: Incidents, incident_id: int, *, fmt: str, data_dir: Path | None = None) -> str:
    """The report as text (the API's answer); Markdown names no chart file."""
    check_format(fmt)
    root = data_dir or incidents.store.path.parent
    facts = gather_facts(root, incident_id, now=incidents.store.clock.now(), with_chart=fmt == "html")
    sections = build_sections(facts)
    return (
        render_html(sections, chart_png=facts.chart_png)
        if fmt == "html"
        else render_markdown(sections, chart_name=None)
    )


def write_report(
    settings: Settings, incident_id: int, *, fmt: str, output: Path | None, now: datetime | None = None
) -> list[Path]:
    check_format(fmt)
    facts = gather_facts(
        settings.data_dir,
        incident_id,
        now=now or SystemClock().now(),
        with_chart=output is not None or fmt == "html",
    )
    sections = build_sections(facts)
    if output is None:
        text = (
            render_html(sections, chart_png=facts.chart_png)
            if fmt == "html"
            else render_markdown(sections, chart_name=None)
        )
        sys.stdout.write(text)
        return []
    written = []
    chart_name = None
    if fmt == "md" and facts.chart_png:
        chart_path = output.with_name(output.stem + "-chart.png")
        _write_whole(chart_path, facts.chart_png)
        written.append(chart_path)
        chart_name = chart_path.name
    text = (
        render_html(sections, chart_png=facts.chart_png)
        if fmt == "html"
        else render_markdown(sections, chart_name=chart_name)
    )
    _write_whole(output, text.encode())
    return [output, *written]


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InvalidInput(f"--format {fmt!r}: use md or html.", field="format")


def _write_whole(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _escaped(value: Any) -> Any:
    """People's words for Markdown prose: ``<`` and ``>`` as entities, so a viewer runs none of
    their HTML, and brackets escaped, so ``[x](javascript:…)`` or ``![](https://tracker/…)`` in a
    note is shown as typed rather than made a link or an image fetched from elsewhere."""
    if isinstance(value, str):
        text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text.replace("[", "\\[").replace("]", "\\]")
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _code(text: str) -> str:
    """``text`` as one inline code span, exactly as written: a code span renders no HTML and no
    link, and its fence is longer than any run of backticks inside it."""
    one = " ".join(text.splitlines())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", one)), default=0) + 1)
    pad = " " if one.startswith("`") or one.endswith("`") else ""
    return f"{fence}{pad}{one}{pad}{fence}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")[:500]
