"""The dashboard: sign-in, session cookie, CSRF, roles, escaping, alerts and rollback refusals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from steadylink.clock import SystemClock
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.links.service import create_key
from steadylink.links.sql_store import SqlStore
from steadylink.ops.api import create_ops_app
from steadylink.ops.dashboard import budgets_of
from steadylink.release.audit import read_audit
from steadylink.release.guard import Guard
from steadylink.settings import Settings
from steadylink.types import Role
from steadylink.watch.journal import Journal


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


def test_alerts_can_be_acknowledged(client: TestClient, sqlite_store: SqlStore, journal: Journal) -> None:
    journal.append("alert.firing", "5xx burn", body={"alert_id": "a-1", "rule": "availability", "severity": "page",
                                                      "summary": "5xx burn rate 14x"})  # fmt: skip
    csrf = sign_in(client, sqlite_store, Role.VIEWER)
    assert "5xx burn rate 14x" in client.get("/").text
    client.post("/dash/alerts/a-1/ack", data={"csrf": csrf})
    assert [e.body["by"] for e in journal.read(kinds=["alert.acknowledged"])] == ["viewer person"]
    assert "acknowledged by viewer person" in client.get("/").text


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
