"""The dashboard: sign-in, session cookie, CSRF, roles, escaping, alerts and rollback refusals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.ops.test_watch_api import fail_three_seconds

from steadylink.clock import FakeClock, SystemClock
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.links.service import create_key
from steadylink.links.sql_store import SqlStore
from steadylink.notify.base import Notice
from steadylink.notify.dispatch import Dispatcher
from steadylink.ops.api import create_ops_app
from steadylink.ops.dashboard import budgets_of
from steadylink.release.audit import read_audit
from steadylink.release.guard import Guard
from steadylink.settings import Settings
from steadylink.types import Role
from steadylink.watch.journal import Journal
from steadylink.watch.probes import ProbeIdentity
from steadylink.watch.watcher import Sources, Watcher


@pytest.fixture
def guard(sqlite_store: SqlStore, tmp_path: Path) -> Guard:
    g = Guard(Settings(data_dir=tmp_path / "data", database=sqlite_store.url))
    g.state.serving = "20260101000000-f1f1f1f"
    return g


@pytest.fixture
def journal(guard: Guard) -> Iterator[Journal]:
    j = Journal.for_data_dir(guard.data_dir)
    yield j
    j.close()


@pytest.fixture
def client(guard: Guard, sqlite_store: SqlStore, journal: Journal) -> Iterator[TestClient]:
    incidents = Incidents(IncidentStore(journal.path), journal)
    with TestClient(create_ops_app(guard, sqlite_store, source_dir=None, incidents=incidents)) as c:
        yield c


def sign_in(client: TestClient, store: SqlStore, role: Role) -> str:
    secret = create_key(store=store, clock=SystemClock(), name=f"{role.label} person", role=role).secret
    r = client.post("/dash/signin", data={"key": secret}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    page = client.get("/")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_a_browser_gets_a_sign_in_page_not_json(client: TestClient) -> None:
    r = client.get("/", headers={"Accept": "text/html"})
    assert (
        r.status_code == 200
        and "Sign in" in r.text
        and "script-src 'self'" in r.headers["content-security-policy"]
    )
    assert client.post("/dash/signin", data={"key": "nope"}).status_code == 401
    assert client.get("/dash/incidents/1", follow_redirects=False).headers["location"] == "/"
    assert client.get("/dash/live.json", follow_redirects=False).status_code == 303


def test_forms_need_the_session_s_csrf_token(
    client: TestClient, sqlite_store: SqlStore, journal: Journal
) -> None:
    csrf = sign_in(client, sqlite_store, Role.EDITOR)
    r = client.post("/dash/incidents", data={"title": "x", "csrf": "forged"})
    assert r.status_code == 403
    r = client.post(
        "/dash/incidents", data={"title": "<script>alert(1)</script>", "csrf": csrf}, follow_redirects=False
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    r = client.post(page.url.path, data={"action": "status", "status": "resolved", "public": "fixed", "csrf": csrf},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    r = client.post(page.url.path, data={"action": "status", "status": "resolved", "csrf": csrf})
    assert r.status_code == 422 and "already resolved" in r.text
    r = client.post(page.url.path, data={"action": "note", "text": "x" * 20_000, "csrf": csrf})
    assert r.status_code == 422
    assert "investigating" in client.get("/").text or "resolved" in client.get("/").text


@pytest.fixture
def watched(
    guard: Guard, sqlite_store: SqlStore, tmp_path: Path
) -> Iterator[tuple[TestClient, Watcher, FakeClock, list[Notice]]]:
    clock = FakeClock(SystemClock().now())  # the dashboard lists the alerts of the guard's last 7 days
    journal = Journal.for_data_dir(guard.data_dir, clock=clock)
    watch = Watcher(
        guard.settings, journal=journal, identity=ProbeIdentity("_probe-redirect", "https://p.invalid/", "k"),
        sources=Sources(), dispatcher=Dispatcher([]), clock=clock,
    )  # fmt: skip
    told: list[Notice] = []
    watch.dispatcher.submit = told.append  # type: ignore[method-assign]  # what PagerDuty would be told
    incidents = Incidents(IncidentStore(journal.path), journal)
    app = create_ops_app(
        guard, sqlite_store, source_dir=None, journal=journal, watch=watch, incidents=incidents
    )
    with TestClient(app) as c:
        yield c, watch, clock, told
    watch.stop()
    journal.close()


def test_acknowledging_on_the_dashboard_goes_through_the_watch_for_a_deployer_only(
    watched: tuple[TestClient, Watcher, FakeClock, list[Notice]], sqlite_store: SqlStore, guard: Guard
) -> None:
    c, watch, clock, told = watched
    fail_three_seconds(watch, clock)
    [alert] = watch.book.open.values()
    assert alert.state == "firing"
    url = f"/dash/alerts/{alert.alert_id}/ack"
    csrf = sign_in(c, sqlite_store, Role.VIEWER)
    page = c.get("/").text
    assert alert.summary in page and url not in page  # no button a viewer cannot use
    assert c.post(url, data={"csrf": csrf}).status_code == 403
    csrf = sign_in(c, sqlite_store, Role.DEPLOYER)
    assert url in c.get("/").text
    assert c.post(url, data={"csrf": "forged"}).status_code == 403
    assert watch.book.open[alert.rule].acknowledged_by is None
    assert c.post(url, data={"csrf": csrf}, follow_redirects=False).status_code == 303
    # the watch's own state: no more reminders or escalation, and PagerDuty is told
    assert watch.book.open[alert.rule].acknowledged_by == "deployer person"
    assert [n.action for n in told if n.alert_id == alert.alert_id][-1] == "acknowledge"
    assert "acknowledged by deployer person" in c.get("/").text
    entries = [
        (e.actor, e.action, e.target, e.outcome) for e in read_audit(guard.data_dir) if e.action == "ack"
    ]
    assert entries == [
        ("viewer person", "ack", alert.alert_id, "refused"),
        ("deployer person", "ack", alert.alert_id, "done"),
    ]
    r = c.post("/dash/alerts/nope/ack", data={"csrf": csrf})
    assert r.status_code == 404 and "No open alert" in r.text


def test_acknowledging_without_the_watch_says_so(
    client: TestClient, sqlite_store: SqlStore, journal: Journal
) -> None:
    csrf = sign_in(client, sqlite_store, Role.DEPLOYER)
    r = client.post("/dash/alerts/a-1/ack", data={"csrf": csrf})
    assert r.status_code == 422 and "watch is not running" in r.text
    assert journal.read(kinds=["alert.acknowledged"]) == []


def test_rollback_needs_deployer_and_confirmation_and_is_audited(
    client: TestClient, sqlite_store: SqlStore, guard: Guard
) -> None:
    csrf = sign_in(client, sqlite_store, Role.EDITOR)
    assert "Roll back" not in client.get("/").text
    assert client.post("/dash/rollback", data={"confirm": "yes", "csrf": csrf}).status_code == 403
    csrf = sign_in(client, sqlite_store, Role.DEPLOYER)
    assert client.post("/dash/rollback", data={"csrf": csrf}).status_code == 422
    r = client.post("/dash/rollback", data={"confirm": "yes", "csrf": csrf})
    assert r.status_code == 404 and "no earlier release" in r.text
    assert [(e.action, e.outcome) for e in read_audit(guard.data_dir)][-1] == ("rollback", "refused")


def test_root_cause_whys_and_actions_are_edited_on_the_incident_page(
    client: TestClient, sqlite_store: SqlStore
) -> None:
    csrf = sign_in(client, sqlite_store, Role.EDITOR)
    page = client.get(client.post("/dash/incidents", data={"title": "x", "csrf": csrf}).url.path)
    form = {"action": "analysis", "root_cause": "json.load on a str", "whys": "a\n\nb\n", "csrf": csrf,
            "action_what": "test the body parser", "action_owner": "bob"}  # fmt: skip
    assert client.post(page.url.path, data=form, follow_redirects=False).status_code == 303
    shown = client.get(page.url.path).text
    assert "json.load on a str" in shown and "test the body parser" in shown and "bob" in shown
    client.post(page.url.path, data={**form, "action_what": "add a canary step", "root_cause": ""})
    body = client.get(page.url.path).text
    assert body.count("<tr><td>") >= 2 and "json.load on a str" in body  # an empty field keeps what was there


def test_the_budget_gauge_shows_what_the_watch_part_reports() -> None:
    watched = {"budget": {"time_based": [{"span": "this year", "allowed_minutes": 20.0, "spent_minutes": 15.0,
                                          "left_minutes": 5.0, "left_percent": 25.0}], "request_based": []}}  # fmt: skip
    budgets = budgets_of(watched)
    assert budgets_of(None) == budgets_of({"budget": "?"}) == []
    from steadylink.ops.pages import render_page
    from steadylink.ops.sessions import Session

    session = Session("s", "c", "k", "alice", Role.VIEWER, 0.0, 0.0)
    status = {"serving": "r1", "front_door": "http://x", "slots": []}
    html = render_page("dashboard.html", s=session, flash="", status=status, rollout=None, budgets=budgets,
                       alerts=[], incidents=[], incident_of={}, releases=[]).body.decode()  # fmt: skip
    assert "5.0 of 20.0 minutes left" in html and 'class="w25"' in html and 'aria-valuenow="25"' in html


def form(**fields: str) -> dict[str, tuple[None, str]]:
    """Fields as the incident page's forms post them: multipart/form-data."""
    return {name: (None, value) for name, value in fields.items()}


def open_incident(client: TestClient, csrf: str) -> str:
    r = client.post("/dash/incidents", files=form(title="Redirects fail", csrf=csrf), follow_redirects=False)
    assert r.status_code == 303
    return str(r.headers["location"])


def test_a_moment_is_corrected_on_the_incident_page_and_said_in_the_timeline_and_journal(
    client: TestClient, sqlite_store: SqlStore, journal: Journal
) -> None:
    csrf = sign_in(client, sqlite_store, Role.EDITOR)
    url = open_incident(client, csrf)
    page = client.get(url).text
    for moment in ("first_bad_signal", "detected", "acknowledged", "mitigated"):
        assert f'id="at-{moment}"' in page and 'value="moment"' in page
    assert 'id="at-resolved"' not in page  # an open incident has no resolution to correct
    earlier = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    r = client.post(url, files=form(action="moment", moment="first_bad_signal", at=f"{earlier:%Y-%m-%d %H:%M:%S}",
                                    reason="5xx began <b>before</b> the page", csrf=csrf), follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].endswith("#moments")
    page = client.get(url).text
    assert f"{earlier:%Y-%m-%d %H:%M:%S} UTC" in page and ">corrected<" in page
    assert f"to {earlier:%Y-%m-%d %H:%M:%S} UTC: 5xx began &lt;b&gt;before&lt;/b&gt; the page" in page
    assert "editor person" in page  # who corrected it, in the timeline
    said = [e for e in journal.read(kinds=["incident.updated"]) if "corrected" in e.message]
    assert [(e.body["by"], e.body["moment"]) for e in said] == [("editor person", "first_bad_signal")]


def test_a_correction_the_page_refuses_is_one_sentence_with_the_form_kept_and_nothing_written(
    client: TestClient, sqlite_store: SqlStore, journal: Journal
) -> None:
    csrf = sign_in(client, sqlite_store, Role.EDITOR)
    url = open_incident(client, csrf)
    before = client.get(url).text.count('class="person"')
    for at, says in (
        ("2099-01-01 00:00", "The detection cannot be in the future"),
        ("yesterday", "&#39;yesterday&#39; is not a time; give it in UTC, like 2026-01-01 12:00:00."),
        ("2000-01-01 00:00", "The detection cannot be before the first bad signal"),
    ):
        r = client.post(url, files=form(action="moment", moment="detected", at=at, reason="my reason", csrf=csrf))
        assert r.status_code == 422 and says in r.text, r.text
        assert r.text.count('role="alert"') == 1 and "{" not in r.text.split('role="alert">')[1][:200]
        # the form comes back open, as typed
        assert f'value="{at}"' in r.text and 'value="my reason"' in r.text and "<details open>" in r.text
    r = client.post(url, files=form(action="moment", moment="resolved", at="2000-01-01", reason="r", csrf=csrf))
    assert r.status_code == 422 and "not resolved: there is no resolution to correct yet" in r.text
    r = client.post(url, files=form(action="moment", moment="detected", at="2000-01-01", reason="r", csrf="forged"))
    assert r.status_code == 403
    assert client.get(url).text.count('class="person"') == before  # no line added
    assert not [e for e in journal.read(kinds=["incident.updated"]) if "corrected" in e.message]
    csrf = sign_in(client, sqlite_store, Role.VIEWER)
    page = client.get(url).text
    assert 'id="at-detected"' not in page  # no form a viewer cannot use
    r = client.post(url, files=form(action="moment", moment="detected", at="2000-01-01", reason="r", csrf=csrf))
    assert r.status_code == 403 and "you need the editor role" in r.text


def test_an_unknown_incident_is_a_page_with_one_sentence_not_json(
    client: TestClient, sqlite_store: SqlStore
) -> None:
    csrf = sign_in(client, sqlite_store, Role.EDITOR)
    for r in (
        client.get("/dash/incidents/999"),
        client.get("/dash/incidents/abc"),
        client.get("/dash/incidents/999/report"),
        client.post("/dash/incidents/999", files=form(action="note", text="hi", csrf=csrf)),
    ):
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), r.text
        assert "There is no incident" in r.text and "the overview lists them." in r.text
    assert "There is no incident &#39;abc&#39;" in client.get("/dash/incidents/abc").text


def test_notes_of_any_script_fit_and_a_1_mb_note_is_one_sentence(
    client: TestClient, sqlite_store: SqlStore
) -> None:
    csrf = sign_in(client, sqlite_store, Role.EDITOR)
    url = open_incident(client, csrf)
    chinese = "重定向失败" * 2_000  # the 10,000 characters a note may have: 30 KB, 90 KB URL-encoded
    r = client.post(url, data={"action": "note", "text": chinese, "csrf": csrf})
    assert r.status_code == 413  # why the page's forms post multipart
    r = client.post(url, files=form(action="note", text=chinese, csrf=csrf), follow_redirects=False)
    assert r.status_code == 303 and chinese in client.get(url).text
    r = client.post(url, files=form(action="note", text="x" * 1_000_000, csrf=csrf))
    assert r.status_code == 422
    assert "The text is 1,000,000 characters, more than the 10,000 kept; link to a longer document instead." in r.text
    assert client.get(url).text.count("x" * 100) == 0


def test_a_report_of_an_incident_without_events_is_a_sentence_on_its_page(
    client: TestClient, sqlite_store: SqlStore
) -> None:
    url = open_incident(client, sign_in(client, sqlite_store, Role.EDITOR))  # by hand: no events
    r = client.get(f"{url}/report")
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")
    assert "has no events from the guard, so there are no facts to report" in r.text and "<h1>#" in r.text
