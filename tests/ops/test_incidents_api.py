"""/ops/v1/incidents: roles, bad input named by field, escaping left to the readers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from steadylink.clock import SystemClock
from steadylink.links.service import create_key
from steadylink.links.sql_store import SqlStore
from steadylink.ops.api import create_ops_app
from steadylink.release.guard import Guard
from steadylink.settings import Settings
from steadylink.types import Role


@pytest.fixture
def client(sqlite_store: SqlStore, tmp_path: Path) -> Iterator[TestClient]:
    guard = Guard(Settings(data_dir=tmp_path / "data", database=sqlite_store.url))
    guard.state.serving = "20260101000000-f1f1f1f"
    with TestClient(create_ops_app(guard, sqlite_store, source_dir=None)) as c:
        yield c


def key(store: SqlStore, role: Role) -> dict[str, str]:
    issued = create_key(store=store, clock=SystemClock(), name=f"{role.label}", role=role)
    return {"Authorization": f"Bearer {issued.secret}"}


def test_open_note_status_resolve_and_reopen(client: TestClient, sqlite_store: SqlStore) -> None:
    editor = key(sqlite_store, Role.EDITOR)
    r = client.post("/ops/v1/incidents", json={"title": "Redirects fail", "severity": "SEV1"}, headers=editor)
    assert r.status_code == 201, r.text
    incident_id = r.json()["id"]
    path = f"/ops/v1/incidents/{incident_id}"
    assert client.post(f"{path}/notes", json={"text": "<b>logs</b>"}, headers=editor).status_code == 201
    r = client.post(
        f"{path}/status", json={"status": "monitoring", "public": "Fixed, watching."}, headers=editor
    )
    assert r.json()["status"] == "monitoring"
    r = client.post(f"{path}/status", json={"status": "investigating"}, headers=editor)
    assert r.status_code == 422 and r.json()["field"] == "status"
    assert client.post(f"{path}/resolve", json={}, headers=editor).json()["status"] == "resolved"
    r = client.post(f"{path}/status", json={"status": "investigating"}, headers=editor)
    assert r.status_code == 200 and r.json()["timeline"][-1]["kind"] == "reopen"
    listed = client.get("/ops/v1/incidents", headers=key(sqlite_store, Role.VIEWER)).json()
    assert [i["id"] for i in listed] == [incident_id]


def test_bad_requests_are_4xx_naming_the_field(client: TestClient, sqlite_store: SqlStore) -> None:
    editor = key(sqlite_store, Role.EDITOR)
    viewer = key(sqlite_store, Role.VIEWER)
    assert client.get("/ops/v1/incidents/999", headers=viewer).status_code == 404
    assert client.get("/ops/v1/incidents/99999999999999999999", headers=viewer).status_code == 404
    assert client.get("/ops/v1/incidents/abc", headers=viewer).status_code == 422
    assert client.post("/ops/v1/incidents", json={"title": "x"}, headers=viewer).status_code == 403
    assert client.get("/ops/v1/incidents").status_code == 401
    opened = client.post("/ops/v1/incidents", json={"title": "x"}, headers=editor).json()
    r = client.post(f"/ops/v1/incidents/{opened['id']}/notes", json={"text": "x" * 1_000_000}, headers=editor)
    assert r.status_code == 413
    r = client.post(f"/ops/v1/incidents/{opened['id']}/notes", json={"text": "x" * 20_000}, headers=editor)
    assert r.status_code == 422 and r.json()["field"] == "text"
    r = client.post(f"/ops/v1/incidents/{opened['id']}/moments", json={"moment": "lunch", "at": "2026-01-01T00:00:00Z"},
                    headers=editor)  # fmt: skip
    assert r.status_code == 422 and r.json()["field"] == "moment"
    r = client.patch(f"/ops/v1/incidents/{opened['id']}", json={"severity": "SEV7"}, headers=editor)
    assert r.status_code == 422 and r.json()["field"] == "severity"


def test_the_status_page_is_public_and_shows_only_public_words(
    client: TestClient, sqlite_store: SqlStore
) -> None:
    editor = key(sqlite_store, Role.EDITOR)
    opened = client.post(
        "/ops/v1/incidents", json={"title": "release 2026-abc broke json.load"}, headers=editor
    ).json()
    path = f"/ops/v1/incidents/{opened['id']}"
    client.post(f"{path}/notes", json={"text": "internal: KeyError in api.py"}, headers=editor)
    client.post(f"{path}/status", json={"status": "identified", "public": "<script>alert(1)</script> found it"},
                headers=editor)  # fmt: skip
    data = client.get("/status.json").json()
    assert data["open_incident"]["title"] == "Service disruption"
    assert [u["text"] for u in data["open_incident"]["updates"]] == ["<script>alert(1)</script> found it"]
    page = client.get("/status")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; found it" in page.text and "<script>alert" not in page.text
    for secret in ("2026-abc", "json.load", "KeyError", "internal"):
        assert secret not in page.text and secret not in str(data)
    assert [c["name"] for c in data["components"]] == ["Redirects", "Link creation", "Web UI"]
    assert all(len(c["days"]) == 90 and c["state"] == "unknown" for c in data["components"])


def test_moments_are_corrected_with_a_reason_and_refused_in_one_sentence(
    client: TestClient, sqlite_store: SqlStore
) -> None:
    editor = key(sqlite_store, Role.EDITOR)
    opened = client.post("/ops/v1/incidents", json={"title": "x"}, headers=editor).json()
    path = f"/ops/v1/incidents/{opened['id']}/moments"
    earlier = opened["opened_at"].replace("Z", "+00:00")
    r = client.post(path, json={"moment": "first_bad_signal", "at": earlier}, headers=editor)
    assert r.status_code == 422 and r.json()["field"] == "reason"
    r = client.post(path, json={"moment": "detected", "at": "2099-01-01T00:00:00Z", "reason": "r"}, headers=editor)
    assert r.status_code == 422 and r.json()["message"].startswith("The detection cannot be in the future")
    r = client.post(path, json={"moment": "detected", "at": "soon", "reason": "r"}, headers=editor)
    assert r.status_code == 422 and r.json() == {
        "error": "invalid", "field": "at", "message": "'soon' is not a time; give it in UTC, like 2026-01-01 12:00:00."
    }  # fmt: skip
    viewer = key(sqlite_store, Role.VIEWER)
    r = client.post(path, json={"moment": "detected", "at": earlier, "reason": "r"}, headers=viewer)
    assert r.status_code == 403
    r = client.post("/ops/v1/incidents/999/moments", json={"moment": "detected", "at": earlier, "reason": "r"},
                    headers=editor)  # fmt: skip
    assert r.status_code == 404
    assert client.get(f"/ops/v1/incidents/{opened['id']}", headers=viewer).json()["corrections"] == {}
    r = client.post(path, json={"moment": "first_bad_signal", "at": "2020-01-01T00:00:00Z", "reason": "logs"},
                    headers=editor)  # fmt: skip
    assert r.status_code == 200 and r.json()["moments"]["first_bad_signal"] == "2020-01-01T00:00:00Z"
    assert r.json()["timeline"][-1]["text"].endswith("to 2020-01-01 00:00:00 UTC: logs")


def test_a_report_of_an_incident_without_events_is_one_sentence_not_a_server_error(
    client: TestClient, sqlite_store: SqlStore
) -> None:
    editor = key(sqlite_store, Role.EDITOR)
    opened = client.post("/ops/v1/incidents", json={"title": "customers call"}, headers=editor).json()
    for fmt in ("md", "html"):
        r = client.get(f"/ops/v1/incidents/{opened['id']}/report?format={fmt}", headers=editor)
        assert r.status_code == 409 and r.json()["error"] == "conflict"
        assert r.json()["message"].startswith(f"Incident {opened['id']} has no events from the guard")
    r = client.get("/ops/v1/incidents/999/report", headers=editor)
    assert r.status_code == 404
