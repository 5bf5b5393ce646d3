"""Who is calling the API, and what their key lets them do.

``Authorization: Bearer <key>`` names an API key, looked up through the
worker's ``links.service.KeyCache``: a revoked key is refused at once by the
worker that revoked it, and within one second by every other worker and host.
Roles, each including the ones below it (``types.Role``):

- viewer: list and show every link with its stats; ``/whoami``.
- editor (and deployer): also create links and files, and change or delete
  the links *it created* (``owner`` = its key id). Other links stay read-only.
- admin: change or delete any link (anonymous ones too) and manage keys.

Without the header a caller is anonymous: it may create links and files when
``links.anonymous_create`` is on (rate-limited per client IP, ``owner=None``)
and nothing else. A header that names no active key is a 401 even where
anonymous callers are allowed, so a revoked key never quietly turns anonymous.

The client IP is the ASGI peer address, except when the peer is the loopback
or a unix socket: then we sit behind our own HAProxy, which *replaces*
``X-Forwarded-For`` with the address it saw (``edge/config.py``), so its first
hop is the client. Anyone else's ``X-Forwarded-For`` is ignored.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from steadylink.errors import Forbidden, Unauthorized
from steadylink.links.model import ApiKey, Link
from steadylink.types import Role
from steadylink.web.context import get_context

CREATE_BUCKET = "create"
MAX_SECRET_LENGTH = 512

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer slk_...` (`steadylink keys create`).",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated key, or an anonymous client (``key is None``)."""

    key: ApiKey | None
    client_ip: str

    @property
    def role(self) -> Role | None:
        return Role(self.key.role) if self.key else None

    @property
    def owner(self) -> str | None:
        return self.key.id if self.key else None

    def has_role(self, role: Role) -> bool:
        return self.key is not None and self.key.role >= role

    def can_change(self, link: Link) -> bool:
        if self.has_role(Role.ADMIN):
            return True
        return self.has_role(Role.EDITOR) and link.owner is not None and link.owner == self.owner

    def sees_target_of(self, link: Link) -> bool:
        """A password link's target (URL or file) is its owner's and the admins' to read."""
        if not link.has_password or self.has_role(Role.ADMIN):
            return True
        return self.key is not None and link.owner is not None and link.owner == self.owner

    def abilities(self) -> list[str]:
        wanted = [
            ("read", Role.VIEWER),
            ("create", Role.EDITOR),
            ("change_own", Role.EDITOR),
            ("change_any", Role.ADMIN),
            ("manage_keys", Role.ADMIN),
        ]
        return [name for name, role in wanted if self.has_role(role)]


def client_ip(request: Request) -> str:
    """The calling client's address (see the module docstring for the proxy rule)."""
    peer = request.client.host if request.client else ""
    return client_address(peer, request.headers.get("x-forwarded-for"))


def client_address(peer: str, forwarded: str | None) -> str:
    """``client_ip`` from the peer's address and the ``X-Forwarded-For`` header."""
    if forwarded and _is_local_peer(peer):
        first = forwarded.split(",", 1)[0].strip()
        if _is_ip(first):
            return first
    return peer or "unknown"


def bearer_secret(authorization: str) -> str | None:
    """The key in an ``Authorization`` header, split as ``HTTPBearer`` does; None if it names none."""
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > MAX_SECRET_LENGTH:
        return None
    return secret


# The dependencies below are flat on purpose: each takes the request and the
# bearer credentials itself rather than depending on an ``identify`` and a
# context dependency. FastAPI solves every node of a dependency tree anew on
# each request (~5 µs a node here): a create solved seven, now three.
# ``Security(bearer)`` stays so the OpenAPI document names the security scheme.
Credentials = HTTPAuthorizationCredentials | None


async def identify(request: Request, credentials: Credentials) -> Caller:
    """The caller: a key, or anonymous if no Authorization header was sent.

    A key this worker saw in the last second is answered from memory; any
    other is looked up in a thread, never on the event loop that also serves
    redirects (a lookup waiting for a silent database would hold them all).
    """
    ip = client_ip(request)
    if "authorization" not in request.headers:
        return Caller(None, ip)
    if credentials is None or not credentials.credentials:
        raise Unauthorized("Use `Authorization: Bearer <api key>`.", field="authorization")
    secret = credentials.credentials
    key = None
    if len(secret) <= MAX_SECRET_LENGTH:
        keys = get_context(request).keys
        key = keys.remembered(secret) or await run_in_threadpool(keys.authenticate, secret)
    if key is None:
        raise Unauthorized(
            "This API key is unknown or revoked; ask an admin for a new one.",
            field="authorization",
        )
    return Caller(key, ip)


def require(role: Role) -> Any:
    """A dependency that lets through keys of ``role`` or above."""

    async def check_role(request: Request, credentials: Credentials = Security(bearer)) -> Caller:
        caller = await identify(request, credentials)
        if caller.key is None:
            raise Unauthorized(
                "This needs an API key: send `Authorization: Bearer <key>`.",
                field="authorization",
            )
        if not caller.has_role(role):
            raise Forbidden(
                f"This needs the {role.label} role; this key is {Role(caller.key.role).label}.",
                field="authorization",
            )
        return caller

    return Depends(check_role)


async def creator(request: Request, credentials: Credentials = Security(bearer)) -> Caller:
    """A caller allowed to create: an editor key, or anonymous (rate-limited) if enabled."""
    caller = await identify(request, credentials)
    if caller.key is not None:
        if not caller.has_role(Role.EDITOR):
            raise Forbidden(
                f"Creating links needs the editor role; this key is {Role(caller.key.role).label}.",
                field="authorization",
            )
        return caller
    ctx = get_context(request)
    if not ctx.settings.links.anonymous_create:
        raise Unauthorized(
            "Anonymous creation is off here: send `Authorization: Bearer <key>`.",
            field="authorization",
        )
    ctx.limiter.check(CREATE_BUCKET, caller.client_ip)
    return caller


def ensure_can_change(caller: Caller, link: Link) -> None:
    if not caller.can_change(link):
        raise Forbidden(
            f"The link {link.code!r} belongs to another key; only its owner or an admin may change it.",
            field="code",
        )


# Cached: parsing an address costs microseconds, and the same few peers
# (HAProxy's loopback above all) and clients call again and again.
@functools.lru_cache(maxsize=4096)
def _is_local_peer(peer: str) -> bool:
    if not peer:
        return True  # a unix socket has no peer address
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=4096)
def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
