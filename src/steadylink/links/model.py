"""The link records: what is stored, what a create or update asks for."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

# The owner of the guard's probe links (watch/probes.py): the reserved namespace
# that user-facing lists, exports and stage samples leave out. API key ids are
# hex, so no user's key can own links under this name.
PROBE_OWNER = "_probe"


class LinkKind(StrEnum):
    URL = "url"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An uploaded file, stored content-addressed under ``<data_dir>/files``."""

    sha256: str
    name: str
    size: int
    content_type: str


@dataclass(frozen=True, slots=True)
class Link:
    code: str
    kind: LinkKind
    url: str | None
    file: StoredFile | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    max_visits: int | None = None
    visits: int = 0
    is_disabled: bool = False
    password_hash: str | None = None
    owner: str | None = None

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def is_used_up(self) -> bool:
        return self.max_visits is not None and self.visits >= self.max_visits


@dataclass(frozen=True, slots=True)
class NewLink:
    """What a caller asks for; validated by the service before it is stored."""

    url: str | None = None
    file: StoredFile | None = None
    code: str | None = None
    expires_at: datetime | None = None
    max_visits: int | None = None
    password: str | None = None
    owner: str | None = None


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


@dataclass(frozen=True, slots=True)
class LinkChanges:
    """A partial update; fields left UNSET stay as they are. ``None`` clears."""

    url: str | _Unset = UNSET
    expires_at: datetime | _Unset | None = UNSET
    max_visits: int | _Unset | None = UNSET
    is_disabled: bool | _Unset = UNSET
    password: str | _Unset | None = UNSET


class VisitRow(NamedTuple):
    """``n`` identical visits, as the redirect path saw them; a row of the visit log.

    A tuple, so a batch goes to the database driver as it is. ``day`` is the
    ISO date (UTC); ``referrer_host`` is ``""`` when there was no referrer.
    """

    code: str
    day: str
    referrer_host: str
    agent_family: str
    is_bot: bool
    n: int = 1


@dataclass(frozen=True, slots=True)
class LinkStats:
    code: str
    total: int
    per_day: dict[str, int] = field(default_factory=dict)
    referrers: dict[str, int] = field(default_factory=dict)
    agents: dict[str, int] = field(default_factory=dict)
    bots: int = 0
    humans: int = 0


@dataclass(frozen=True, slots=True)
class LinkPage:
    links: list[Link]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: int
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
