"""The guard's HTTP API (``/ops/v1``), served on the ops port by ``steadylink up``.

It runs in the guard, never in the request path, so it keeps answering when
the app does not. Callers authenticate with an API key of the links store;
deploy, approve and rollback need the ``deployer`` role, ``--no-canary`` needs
``admin``. ``POST /ops/v1/deploys`` streams its progress as JSON lines and
ends with the release record.
"""

import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from steadylink.errors import Forbidden, InvalidInput, SteadylinkError, Unauthorized
from steadylink.incidents.service import Incidents
from steadylink.links.model import ApiKey
from steadylink.links.service import IssuedKey
from steadylink.links.store import Store
from steadylink.ops.guard_pages import include_guard_pages
from steadylink.ops.keys import OpsKeys
from steadylink.ops.watch_api import install_watch_routes
from steadylink.release.approvals import approve_release
from steadylink.release.audit import record_action
from steadylink.release.deploy import EXIT_REFUSED, Deployment, DeployRequest
from steadylink.release.guard import Guard
from steadylink.release.history import list_records, load_record
from steadylink.types import Role
from steadylink.watch.journal import Journal
from steadylink.watch.watcher import Watcher
from steadylink.web.docs import docs_router
from steadylink.web.errors import install_error_handlers


class DeployBody(BaseModel):
    ref: str = Field(min_length=1, max_length=200)
    source: str | None = Field(default=None, max_length=4096)
    no_canary: bool = False
    # stage comparisons that will differ on purpose (``steadylink.release.stage.CHANGEABLE_CHECKS``)
    expect_change: list[Literal["differential", "writes", "data"]] = Field(default_factory=list, max_length=3)


class RollbackBody(BaseModel):
    release: str | None = Field(default=None, max_length=200)


def create_ops_app(
    guard: Guard,
    store: Store,
    *,
    source_dir: Path | None,
    journal: Journal | None = None,
    watch: Watcher | None = None,
    incidents: Incidents | None = None,
    operator: IssuedKey | None = None,
) -> FastAPI:
    app = FastAPI(title="steadylink guard", openapi_url="/ops/openapi.json", docs_url=None, redoc_url=None)
    docs = docs_router(path="/ops/docs", openapi_url="/ops/openapi.json", title="steadylink guard")
    app.include_router(docs)

    # The same JSON errors as the public API, naming the field; its callers are
    # the operators, so a failed release step's 5xx says what failed.
    install_error_handlers(app, shows_server_errors=True)

    keys = OpsKeys(store, operator)

    def caller(authorization: Annotated[str | None, Header()] = None) -> ApiKey:
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise Unauthorized("Send an API key: Authorization: Bearer <key>.")
        key = keys.authenticate(secret.strip())  # the local operator's survives a silent store
        if key is None:
            raise Unauthorized("This API key is unknown or revoked.")
        return key

    def need(key: ApiKey, role: Role, action: str) -> None:
        if key.role < role:
            audit(guard, key, action, "-", "forbidden")
            raise Forbidden(f"{action} needs the {role.label} role; this key is {Role(key.role).label}.")

    # incidents, the status page and the dashboard
    include_guard_pages(
        app, guard, keys, incidents, caller=caller, need=need, watch_status=watch.status if watch else None,
        acknowledge_alert=watch.acknowledge if watch else None,
    )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ops/v1/status")
    def status(key: Annotated[ApiKey, Depends(caller)]) -> dict[str, Any]:
        need(key, Role.VIEWER, "status")
        return {**guard.status(), "watch": watch.status() if watch is not None else None}

    @app.get("/ops/v1/releases")
    def releases(key: Annotated[ApiKey, Depends(caller)]) -> list[dict[str, object]]:
        need(key, Role.VIEWER, "releases")
        return [r.to_json() for r in list_records(guard.data_dir)]

    @app.get("/ops/v1/releases/{release_id}")
    def release(release_id: str, key: Annotated[ApiKey, Depends(caller)]) -> dict[str, object]:
        need(key, Role.VIEWER, "releases")
        return load_record(guard.data_dir, release_id).to_json()

    @app.post("/ops/v1/releases/{release_id}/approve")
    def approve(release_id: str, key: Annotated[ApiKey, Depends(caller)]) -> dict[str, object]:
        need(key, Role.DEPLOYER, "approve")
        approval = approve_release(
            guard.data_dir, release_id, approver=key.name, approver_key=key.id, clock=guard.clock
        )
        audit(guard, key, "approve", release_id, "approved")
        return approval

    @app.post("/ops/v1/rollback")
    def rollback(body: RollbackBody, key: Annotated[ApiKey, Depends(caller)]) -> dict[str, object]:
        need(key, Role.DEPLOYER, "rollback")
        started = time.monotonic()
        lines: list[str] = []
        try:
            target = guard.rollback(body.release, progress=lines.append, actor=key.name)
        except SteadylinkError as exc:
            target = body.release or "previous"
            audit(guard, key, "rollback", target, "refused", detail={"reason": exc.message})
            raise
        seconds = round(time.monotonic() - started, 3)
        audit(guard, key, "rollback", target, "done", detail={"seconds": seconds})
        return {"serving": target, "seconds": seconds, "log": lines}

    @app.post("/ops/v1/edge/reload")
    def edge_reload(key: Annotated[ApiKey, Depends(caller)]) -> dict[str, object]:
        need(key, Role.DEPLOYER, "edge reload")
        seconds = guard.reload_edge()
        audit(guard, key, "edge reload", "haproxy", "done", detail={"seconds": seconds})
        return {"seconds": round(seconds, 3), "edge_pid": guard.edge.pid if guard.edge else None}

    @app.post("/ops/v1/deploys")
    def deploy(body: DeployBody, key: Annotated[ApiKey, Depends(caller)]) -> StreamingResponse:
        need(
            key,
            Role.ADMIN if body.no_canary else Role.DEPLOYER,
            "deploy --no-canary" if body.no_canary else "deploy",
        )
        source = Path(body.source) if body.source else source_dir
        if source is None:
            raise InvalidInput(
                "No source repository: pass --source GIT_DIR or start `up --source`.", field="source"
            )
        if not is_allowed_source(source, source_dir, guard.settings.release.sources):
            audit(guard, key, "deploy", body.ref, "forbidden", detail={"source": str(source)})
            raise Forbidden(
                f"The guard builds only its configured sources, and {str(source)!r} is not one; "
                "add it to release.sources or deploy from the `up --source` checkout.",
                field="source",
            )
        request = DeployRequest(
            ref=body.ref, source_dir=source, actor=key.name, role=Role(key.role), skip_canary=body.no_canary,
            expected_changes=tuple(dict.fromkeys(body.expect_change)),
        )  # fmt: skip
        return StreamingResponse(_run_deploy(guard, request, key.id), media_type="application/x-ndjson")

    install_watch_routes(app, caller=caller, need=need, journal=journal, watch=watch)
    return app


def is_allowed_source(source: Path, up_source: Path | None, configured: tuple[str, ...]) -> bool:
    """Whether a deploy may build ``source``: the ``up --source`` checkout or one in ``release.sources``."""
    allowed = {Path(s).expanduser().resolve() for s in configured}
    if up_source is not None:
        allowed.add(up_source.resolve())
    return source.expanduser().resolve() in allowed


def audit(
    guard: Guard,
    key: ApiKey,
    action: str,
    target: str,
    outcome: str,
    *,
    detail: dict[str, object] | None = None,
) -> None:
    """One line in the guard's audit log: the key's name and its id (a name may be reused
    once its key is revoked)."""
    record_action(
        guard.data_dir, actor=key.name, role=Role(key.role), action=action, target=target,
        outcome=outcome, clock=guard.clock, detail={"key_id": key.id, **(detail or {})},
    )  # fmt: skip


def _run_deploy(guard: Guard, request: DeployRequest, key_id: str) -> Iterator[bytes]:
    """Run the deploy in its own thread (a disconnecting client doesn't stop it)."""
    lines: queue.Queue[dict[str, object] | None] = queue.Queue()

    def work() -> None:
        deployment = Deployment(guard, clock=guard.clock, progress=lambda s: lines.put({"progress": s}))
        detail: dict[str, object]
        try:
            record = deployment.run(request)
            detail = {"record": record.to_json(), "exit_code": record.exit_code}
            outcome = record.verdict
        except SteadylinkError as exc:
            detail = {
                "error": exc.message,
                "exit_code": EXIT_REFUSED if exc.exit_code == 2 else exc.exit_code,
            }
            if deployment.record is not None:
                detail["record"] = deployment.record.to_json()
            outcome = "refused"
        record_action(
            guard.data_dir, actor=request.actor, role=request.role, action="deploy", target=request.ref,
            outcome=outcome, clock=guard.clock,
            detail={"key_id": key_id, "exit_code": detail["exit_code"], "no_canary": request.skip_canary},
        )  # fmt: skip
        lines.put(detail)
        lines.put(None)

    threading.Thread(target=work, name="deploy", daemon=True).start()
    while (line := lines.get()) is not None:
        yield (json.dumps(line) + "\n").encode()
