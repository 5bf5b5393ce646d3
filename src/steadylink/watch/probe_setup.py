"""The guard's probe identity: the reserved probe link and the probe's API key.

Both live in the reserved namespace ``PROBE_OWNER`` (links/model.py): the key's
id *is* that owner, so every link the create probe makes through the API is in
the namespace too, and user-facing lists, exports and stage samples leave them
out. The key's secret is kept in ``<data dir>/run/probe.key`` (0600); when it is
lost (a new data dir over an old PostgreSQL database) the key gets a new one.

The redirect probe's link expires in the year 2999 on purpose: a link with an
expiry is never answered from a map at the edge, so the probe keeps seeing the
serving release's workers, which is what fails when they hang.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import update

from steadylink.clock import Clock
from steadylink.errors import Conflict
from steadylink.links import schema
from steadylink.links.model import PROBE_OWNER, ApiKey, Link, LinkKind
from steadylink.links.passwords import hash_api_key
from steadylink.links.service import KEY_PREFIX, authenticate
from steadylink.links.sql_store import SqlStore
from steadylink.types import Role
from steadylink.watch.probes import ProbeIdentity

PROBE_CODE = "_probe-redirect"
PROBE_TARGET = "https://probe.steadylink.invalid/"
PROBE_KEY_NAME = "steadylink guard probes"
PROBE_KEY_FILE = "probe.key"
_FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)


def ensure_probe_identity(store: SqlStore, *, data_dir: Path, clock: Clock) -> ProbeIdentity:
    secret = _ensure_probe_key(store, data_dir / "run" / PROBE_KEY_FILE, clock)
    link = store.get_link(PROBE_CODE)
    if link is None or link.url != PROBE_TARGET or link.is_disabled:
        if link is not None:
            store.delete_link(PROBE_CODE)
        now = clock.now()
        # another guard on the same database may have made it a moment ago
        with contextlib.suppress(Conflict):
            store.insert_link(
                Link(
                    code=PROBE_CODE, kind=LinkKind.URL, url=PROBE_TARGET, file=None,
                    created_at=now, updated_at=now, expires_at=_FAR_FUTURE, owner=PROBE_OWNER,
                )
            )  # fmt: skip
    return ProbeIdentity(redirect_code=PROBE_CODE, redirect_url=PROBE_TARGET, api_key=secret)


def _ensure_probe_key(store: SqlStore, path: Path, clock: Clock) -> str:
    if path.exists():
        secret = path.read_text().strip()
        found = authenticate(store=store, secret=secret)
        if found is not None and found.id == PROBE_OWNER:
            return secret
    secret = f"{KEY_PREFIX}{PROBE_OWNER}_{secrets.token_urlsafe(32)}"
    key_hash = hash_api_key(secret)
    existing = {k.id for k in store.list_keys()}
    if PROBE_OWNER in existing:
        with store.engine.begin() as conn:
            conn.execute(
                update(schema.api_keys)
                .where(schema.api_keys.c.id == PROBE_OWNER)
                .values(key_hash=key_hash, revoked_at=None, role=int(Role.EDITOR))
            )
    else:
        prefix = secret[: len(KEY_PREFIX) + 6]
        store.insert_key(ApiKey(PROBE_OWNER, PROBE_KEY_NAME, int(Role.EDITOR), prefix, clock.now()), key_hash)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    return secret
