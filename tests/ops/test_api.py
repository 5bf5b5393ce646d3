import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.release.git_repo import git

from steadylink.clock import SystemClock
from steadylink.errors import StoreError
from steadylink.links.service import create_key
from steadylink.links.sql_store import SqlStore
from steadylink.ops.api import create_ops_app
from steadylink.release.audit import read_audit
from steadylink.release.guard import Guard
from steadylink.release.history import ReleaseRecord, save_record
from steadylink.settings import ReleaseSettings, Settings
from steadylink.types import Role


@pytest.fixture
def guard(sqlite_store: SqlStore, tmp_path: Path) -> Guard:
    settings = Settings(data_dir=tmp_path / "data", database=sqlite_store.url)
    g = Guard(settings)
    g.state.serving = "20260101000000-f1f1f1f"
    return g


@pytest.fixture
def client(guard: Guard, sqlite_store: SqlStore) -> Iterator[TestClient]:
    with TestClient(create_ops_app(guard, sqlite_store, source_dir=None)) as c:
        yield c


def key(store: SqlStore, role: Role) -> dict[str, str]:
    issued = create_key(store=store, clock=SystemClock(), name=f"{role.label} person", role=role)
    return {"Authorization": f"Bearer {issued.secret}"}


def test_every_ops_call_needs_a_known_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    for bad in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        r = client.get("/ops/v1/status", headers=bad)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_roles_are_checked_and_refusals_audited(client: TestClient, sqlite_store: SqlStore, guard: Guard) -> None:
    viewer = key(sqlite_store, Role.VIEWER)
    assert client.get("/ops/v1/status", headers=viewer).json()["serving"] == "20260101000000-f1f1f1f"
    assert client.get("/ops/v1/releases", headers=viewer).json() == []
    r = client.post("/ops/v1/rollback", json={}, headers=viewer)
    assert r.status_code == 403 and "deployer" in r.json()["message"]
    deployer = key(sqlite_store, Role.DEPLOYER)
    r = client.post("/ops/v1/deploys", json={"ref": "main", "no_canary": True}, headers=deployer)
    assert r.status_code == 403 and "admin" in r.json()["message"]
    actions = [(e.action, e.outcome) for e in read_audit(guard.data_dir)]
    assert ("rollback", "forbidden") in actions and ("deploy --no-canary", "forbidden") in actions


def test_rollback_with_nothing_to_roll_back_to_is_a_404(client: TestClient, sqlite_store: SqlStore) -> None:
    r = client.post("/ops/v1/rollback", json={}, headers=key(sqlite_store, Role.DEPLOYER))
    assert r.status_code == 404 and "no earlier release" in r.json()["message"]


def test_deploy_refusals_name_the_problem(client: TestClient, sqlite_store: SqlStore, tmp_path: Path) -> None:
    deployer = key(sqlite_store, Role.DEPLOYER)
    r = client.post("/ops/v1/deploys", json={"ref": "main"}, headers=deployer)
    assert r.status_code == 422 and r.json()["field"] == "source"
    r = client.post("/ops/v1/deploys", json={"ref": ""}, headers=deployer)
    assert r.status_code == 422 and r.json()["field"] == "ref"
    r = client.post("/ops/v1/deploys", json={"ref": "main", "expect_change": ["health"]}, headers=deployer)
    assert r.status_code == 422 and r.json()["field"] == "expect_change"
    r = client.post("/ops/v1/deploys", content=b"{not json", headers=deployer)
    assert r.status_code in (400, 422) and "Traceback" not in r.text
    r = client.post("/ops/v1/deploys", json={"ref": "main", "source": str(tmp_path / "none")}, headers=deployer)
    assert r.status_code == 403 and r.json()["field"] == "source"


def test_a_configured_source_that_is_gone_is_named(
    guard: Guard, sqlite_store: SqlStore, tmp_path: Path
) -> None:
    gone = tmp_path / "none"
    guard.settings = guard.settings.with_overrides(release=ReleaseSettings(sources=(str(gone),)))
    with TestClient(create_ops_app(guard, sqlite_store, source_dir=None)) as client:
        r = client.post("/ops/v1/deploys", json={"ref": "main", "source": str(gone)},
                        headers=key(sqlite_store, Role.DEPLOYER))  # fmt: skip
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert lines[-1]["exit_code"] == 2 and "does not exist" in lines[-1]["error"]


def test_only_configured_sources_are_built(guard: Guard, sqlite_store: SqlStore, tmp_path: Path) -> None:
    """A deployer key must not make the guard build (and run the tests of) any repository on the host."""
    ours, other = tmp_path / "ours", tmp_path / "other"
    for repo in (ours, other):
        repo.mkdir()
        git(repo, "init", "-q")
    deployer = key(sqlite_store, Role.DEPLOYER)
    with TestClient(create_ops_app(guard, sqlite_store, source_dir=ours)) as client:
        for source in (str(other), f"{ours}/../other", "/"):
            r = client.post("/ops/v1/deploys", json={"ref": "main", "source": source}, headers=deployer)
            assert r.status_code == 403, r.text
            assert r.json()["field"] == "source" and "release.sources" in r.json()["message"]
        refused = [e for e in read_audit(guard.data_dir) if e.action == "deploy"]
        assert refused and refused[-1].outcome == "forbidden" and refused[-1].detail["key_id"]
        # the `up --source` checkout itself, named or not, is allowed (refused later: no commit yet)
        r = client.post("/ops/v1/deploys", json={"ref": "main", "source": f"{ours}/."}, headers=deployer)
        assert r.status_code == 200


def test_approvals_and_the_audit_log_record_the_key_id(
    client: TestClient, sqlite_store: SqlStore, guard: Guard
) -> None:
    issued = create_key(store=sqlite_store, clock=SystemClock(), name="second person", role=Role.DEPLOYER)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    record = ReleaseRecord("20260101120000-abc1234", "main", "0" * 40, "v2", "dev", "first person", datetime(2026, 1, 1, tzinfo=UTC))
    save_record(guard.data_dir, record)
    r = client.post("/ops/v1/releases/20260101120000-abc1234/approve", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["approver"] == "second person" and r.json()["approver_key"] == issued.key.id
    entry = read_audit(guard.data_dir, action="approve")[-1]
    assert entry.actor == "second person" and entry.detail["key_id"] == issued.key.id


def test_a_dirty_source_checkout_is_refused(guard: Guard, sqlite_store: SqlStore, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "app.py").write_text("print('v1')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    (repo / "app.py").write_text("print('v2, not committed')\n")
    with TestClient(create_ops_app(guard, sqlite_store, source_dir=repo)) as client:
        r = client.post("/ops/v1/deploys", json={"ref": "HEAD", "source": str(repo)},
                        headers=key(sqlite_store, Role.DEPLOYER))  # fmt: skip
    last = json.loads(r.text.splitlines()[-1])
    assert last["exit_code"] == 2 and "uncommitted changes" in last["error"]


def test_the_local_operator_keeps_the_ops_api_while_the_links_database_is_silent(
    guard: Guard, sqlite_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys live in the links database: in its outage `status` once failed for everyone."""
    operator = create_key(store=sqlite_store, clock=SystemClock(), name="operator", role=Role.ADMIN)
    other = key(sqlite_store, Role.DEPLOYER)
    app = create_ops_app(guard, sqlite_store, source_dir=None, operator=operator)
    with TestClient(app) as c:

        def silent(*args: object) -> None:
            raise StoreError("The links database is not answering right now.")

        monkeypatch.setattr(sqlite_store, "key_by_hash", silent)
        monkeypatch.setattr(sqlite_store, "list_keys", silent)
        mine = c.get("/ops/v1/status", headers={"Authorization": f"Bearer {operator.secret}"})
        assert mine.status_code == 200 and mine.json()["serving"] == "20260101000000-f1f1f1f"
        theirs = c.get("/ops/v1/status", headers=other)
        assert theirs.status_code == 503 and "not answering" in theirs.json()["message"]
        wrong = c.get("/ops/v1/status", headers={"Authorization": f"Bearer {operator.secret}x"})
        assert wrong.status_code == 503  # never let in on a guess while nothing can be checked
        # the dashboard too: signing in, then a page that checks the session's key is still active
        signed = c.post("/dash/signin", data={"key": operator.secret}, follow_redirects=False)
        assert signed.status_code == 303
        page = c.get("/")
        assert page.status_code == 200 and "Sign in" not in page.text
