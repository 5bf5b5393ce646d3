"""The link service: create, read, change, delete, resolve; API keys.

Keyword-only functions over a ``Store``; the web app and the CLI both call
these, so a rule holds the same way everywhere.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from steadylink.clock import Clock, utc
from steadylink.errors import Conflict, Gone, InvalidInput, NotFound
from steadylink.links.codes import RandomSource, check_custom_code, code_taken, generate_code
from steadylink.links.files import FileStore
from steadylink.links.model import (
    UNSET,
    ApiKey,
    Link,
    LinkChanges,
    LinkKind,
    NewLink,
    StoredFile,
    _Unset,
)
from steadylink.links.passwords import hash_api_key, hash_password
from steadylink.links.store import Store, key_name_taken
from steadylink.links.targets import normalise_target
from steadylink.settings import Settings
from steadylink.types import Role

_GENERATE_ATTEMPTS = 8
MAX_PASSWORD_LENGTH = 256
MAX_VISITS_LIMIT = 10**12


def own_hosts(settings: Settings) -> tuple[str, ...]:
    return (_host_of(settings.base_url), *settings.links.own_hosts)


@functools.lru_cache(maxsize=16)
def _host_of(base_url: str) -> str:
    return urlsplit(base_url).hostname or ""


Draft = Callable[[str], Link]
# Stores a new link off the event loop; False if its code was taken (``links.writer``).
Insert = Callable[[Link], Awaitable[bool]]


def create_link(
    *, store: Store, settings: Settings, clock: Clock, rng: RandomSource, new: NewLink
) -> Link:
    """Validate ``new`` and store it; a generated code is retried on collision."""
    draft = _draft(settings, clock, new)
    if new.code is not None:
        link = draft(check_custom_code(new.code))
        store.insert_link(link)
        return link
    for _ in range(_GENERATE_ATTEMPTS):
        candidate = draft(generate_code(settings.links.code_length, rng))
        if store.insert_links([candidate])[0]:
            return candidate
    raise _no_free_code()


async def create_link_async(
    *, insert: Insert, settings: Settings, clock: Clock, rng: RandomSource, new: NewLink
) -> Link:
    """``create_link`` for an event loop: nothing slow runs on the loop.

    ``insert`` writes in a thread (``links.writer.LinkWriter``), and a
    password is hashed in one too: argon2 takes tens of milliseconds, and a
    worker's loop also answers its redirects.
    """
    if new.password is None:
        draft = _draft(settings, clock, new)
    else:
        draft = await asyncio.to_thread(_draft, settings, clock, new)
    if new.code is not None:
        link = draft(check_custom_code(new.code))
        if not await insert(link):
            raise code_taken(link.code)
        return link
    for _ in range(_GENERATE_ATTEMPTS):
        candidate = draft(generate_code(settings.links.code_length, rng))
        if await insert(candidate):
            return candidate
    raise _no_free_code()


def _draft(settings: Settings, clock: Clock, new: NewLink) -> Draft:
    """Check everything but the code; return the link to store under a code."""
    now = clock.now()
    if (new.url is None) == (new.file is None):
        raise InvalidInput("Give either a URL or a file.", field="url")
    url = None
    if new.url is not None:
        url = normalise_target(
            new.url,
            max_length=settings.links.max_url_length,
            own_hosts=own_hosts(settings),
            blocked_domains=settings.links.blocked_domains,
        )
    expires_at = _check_expiry(new.expires_at, now)
    max_visits = _check_max_visits(new.max_visits)
    password_hash = _hash_optional_password(new.password)
    kind = LinkKind.URL if url is not None else LinkKind.FILE

    def link_with(code: str) -> Link:
        # built whole rather than by dataclasses.replace, which costs more than the Link
        return Link(
            code=code,
            kind=kind,
            url=url,
            file=new.file,
            created_at=now,
            updated_at=now,
            expires_at=expires_at,
            max_visits=max_visits,
            password_hash=password_hash,
            owner=new.owner,
        )

    return link_with


def _no_free_code() -> Conflict:
    return Conflict("Could not find a free code; try again or raise links.code_length.")


def get_link(*, store: Store, code: str) -> Link:
    link = store.get_link(code)
    if link is None:
        raise NotFound(f"No link with code {code!r}.", field="code")
    return link


def change_link(
    *, store: Store, settings: Settings, clock: Clock, code: str, changes: LinkChanges
) -> Link:
    link = get_link(store=store, code=code)
    now = clock.now()
    updated = link
    if not isinstance(changes.url, _Unset):
        if link.kind is LinkKind.FILE:
            raise InvalidInput("A file link has no URL to change.", field="url")
        updated = replace(
            updated,
            url=normalise_target(
                changes.url,
                max_length=settings.links.max_url_length,
                own_hosts=own_hosts(settings),
                blocked_domains=settings.links.blocked_domains,
            ),
        )
    if not isinstance(changes.expires_at, _Unset):
        updated = replace(updated, expires_at=_check_expiry(changes.expires_at, now))
    if not isinstance(changes.max_visits, _Unset):
        updated = replace(updated, max_visits=_check_max_visits(changes.max_visits))
    if not isinstance(changes.is_disabled, _Unset):
        updated = replace(updated, is_disabled=bool(changes.is_disabled))
    if not isinstance(changes.password, _Unset):
        updated = replace(updated, password_hash=_hash_optional_password(changes.password))
    updated = replace(updated, updated_at=now)
    store.replace_link(updated)
    return updated


def delete_link(*, store: Store, code: str, files: FileStore | None = None) -> None:
    """Delete a link and its stats, and its uploaded file if no other link serves it."""
    link = store.get_link(code) if files is not None else None
    if not store.delete_link(code):
        raise NotFound(f"No link with code {code!r}.", field="code")
    if files is not None and link is not None and link.file is not None:
        sha256 = link.file.sha256
        files.remove_unused(sha256, is_used=lambda: store.is_file_used(sha256))


class Outcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class Resolution:
    outcome: Outcome
    link: Link | None = None
    reason: str = ""


def resolve_link(*, link: Link | None, now: datetime) -> Resolution:
    """What a visit to a link should get. Disabled links look like unknown ones."""
    if link is None or link.is_disabled:
        return Resolution(Outcome.NOT_FOUND, None, "No link has this name.")
    if link.is_expired(now):
        return Resolution(Outcome.GONE, link, "This link has expired.")
    if link.is_used_up():
        return Resolution(Outcome.GONE, link, "This link has reached its visit limit.")
    return Resolution(Outcome.FOUND, link)


def raise_for(resolution: Resolution, code: str) -> Link:
    if resolution.outcome is Outcome.NOT_FOUND or resolution.link is None:
        raise NotFound(f"No link with code {code!r}.", field="code")
    if resolution.outcome is Outcome.GONE:
        raise Gone(resolution.reason, field="code")
    return resolution.link


# API keys -------------------------------------------------------------------

KEY_PREFIX = "slk_"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str


def create_key(*, store: Store, clock: Clock, name: str, role: Role) -> IssuedKey:
    """Make a key; the secret is returned once and only its hash is stored."""
    name = (name or "").strip()
    if not name or len(name) > 128:
        raise InvalidInput("A key needs a name of 1 to 128 characters.", field="name")
    # Approvals and the audit log name keys: two active keys of one name would
    # make them ambiguous (and let one person pass for another).
    if any(k.name == name and not k.is_revoked for k in store.list_keys()):
        raise key_name_taken(name)
    key_id = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(key_id, name, int(role), secret[: len(KEY_PREFIX) + 6], clock.now())
    store.insert_key(key, hash_api_key(secret))
    return IssuedKey(key, secret)


def authenticate(*, store: Store, secret: str) -> ApiKey | None:
    return _active_key(store, hash_api_key(secret))


KEY_CACHE_SECONDS = 1.0


class KeyCache:
    """``authenticate`` for one worker process, its answers kept ``seconds`` long.

    Every keyed API request authenticates, and a store lookup costs more than
    the rest of a small request. Revocation still holds: a key revoked through
    this cache (``forget``) is refused at once in this process, and one revoked
    elsewhere (another worker, ``steadylink keys revoke``) within ``seconds``
    (``KEY_CACHE_SECONDS``, 1 s). Only active keys are kept, so a key made a
    moment ago works at once, and an unknown secret is looked up every time.
    """

    def __init__(
        self, store: Store, clock: Clock, *, seconds: float = KEY_CACHE_SECONDS, size: int = 1024
    ) -> None:
        self._store = store
        self._clock = clock
        self._seconds = seconds
        self._size = size
        self._keys: dict[str, tuple[ApiKey, float]] = {}

    def remembered(self, secret: str) -> ApiKey | None:
        """The key for ``secret`` if this cache holds it, fresh; never asks the store."""
        kept = self._keys.get(hash_api_key(secret))
        if kept is not None and self._clock.monotonic() < kept[1]:
            return kept[0]
        return None

    def authenticate(self, secret: str) -> ApiKey | None:
        key_hash = hash_api_key(secret)
        now = self._clock.monotonic()
        kept = self._keys.get(key_hash)
        if kept is not None and now < kept[1]:
            return kept[0]
        key = _active_key(self._store, key_hash)
        if key is None:
            self._keys.pop(key_hash, None)
            return None
        if len(self._keys) >= self._size:
            self._keys.clear()
        self._keys[key_hash] = (key, now + self._seconds)
        return key

    def forget(self, key_id: str) -> None:
        """Drop key ``key_id`` now (it was just revoked through this process)."""
        self._keys = {h: kept for h, kept in self._keys.items() if kept[0].id != key_id}


def _active_key(store: Store, key_hash: str) -> ApiKey | None:
    key = store.key_by_hash(key_hash)
    if key is None or key.is_revoked:
        return None
    return key


def revoke_key(*, store: Store, clock: Clock, key_id: str) -> None:
    if not store.revoke_key(key_id, clock.now()):
        raise NotFound(f"No active key with id {key_id!r}.", field="id")


# checks ---------------------------------------------------------------------


def _check_expiry(value: datetime | _Unset | None, now: datetime) -> datetime | None:
    if value is None or isinstance(value, _Unset):
        return None
    if not isinstance(value, datetime):
        raise InvalidInput("expires_at must be an ISO 8601 date and time.", field="expires_at")
    value = utc(value)
    if value <= now:
        raise InvalidInput("expires_at is in the past.", field="expires_at")
    return value


def _check_max_visits(value: int | _Unset | None) -> int | None:
    if value is None or isinstance(value, _Unset):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VISITS_LIMIT:
        raise InvalidInput("max_visits must be a whole number of 1 or more.", field="max_visits")
    return value


def _hash_optional_password(value: str | _Unset | None) -> str | None:
    if value is None or isinstance(value, _Unset) or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password must be text of at most {MAX_PASSWORD_LENGTH} characters.", field="password"
        )
    return hash_password(value)


__all__ = [
    "UNSET",
    "IssuedKey",
    "KeyCache",
    "Outcome",
    "Resolution",
    "StoredFile",
    "authenticate",
    "change_link",
    "create_key",
    "create_link",
    "delete_link",
    "get_link",
    "raise_for",
    "resolve_link",
    "revoke_key",
]
