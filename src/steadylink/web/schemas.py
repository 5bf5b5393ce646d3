"""The API's request and response bodies (``/api/v1``).

Requests forbid unknown fields, so a misspelt ``max_visit`` is a 422 naming it
rather than a silently ignored option. Responses never carry a password hash
or an API key hash; a key's secret appears once, in the answer to its creation.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from steadylink.links.model import ApiKey, Link, LinkStats, NewLink
from steadylink.links.service import MAX_PASSWORD_LENGTH, MAX_VISITS_LIMIT
from steadylink.types import Role

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def reject_control_chars(value: str) -> str:
    """Refuse NUL and other control characters: no store or log should ever see them."""
    if _CONTROL_CHARS.search(value):
        raise ValueError("must not contain control characters")
    return value


def require_iso_text(value: object) -> object:
    """Only ISO 8601 text: pydantic alone would also take ``0.5`` as a Unix timestamp."""
    if value is None or isinstance(value, (date, datetime)):
        return value
    if not isinstance(value, str) or not value[:4].isdigit() or value[4:5] != "-":
        raise ValueError("must be an ISO 8601 date and time, like 2026-05-01T12:00:00Z")
    return value


Text = Annotated[str, AfterValidator(reject_control_chars)]
IsoDateTime = Annotated[datetime, BeforeValidator(require_iso_text)]
IsoDay = Annotated[date | datetime, BeforeValidator(require_iso_text)]
Url = Annotated[Text, Field(max_length=8192, examples=["https://example.com/page"])]
Code = Annotated[Text, Field(max_length=64, examples=["my-code"])]
Password = Annotated[str, Field(max_length=MAX_PASSWORD_LENGTH)]
MaxVisits = Annotated[StrictInt, Field(ge=1, le=MAX_VISITS_LIMIT)]
RoleName = Literal["viewer", "editor", "deployer", "admin"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LinkCreate(_Request):
    """A new link; ``expires_at`` without a zone is taken as UTC."""

    url: Url
    code: Code | None = None
    expires_at: IsoDateTime | None = None
    max_visits: MaxVisits | None = None
    password: Password | None = None

    def to_new(self, owner: str | None) -> NewLink:
        return NewLink(
            url=self.url,
            code=self.code,
            expires_at=self.expires_at,
            max_visits=self.max_visits,
            password=self.password,
            owner=owner,
        )


class LinkUpdate(_Request):
    """A partial change: only the fields sent change; ``null`` clears.

    ``url`` and ``is_disabled`` cannot be cleared, so they take no ``null``;
    ``password`` is cleared by ``null`` or ``""``.
    """

    url: Url | SkipJsonSchema[None] = None
    expires_at: IsoDateTime | None = None
    max_visits: MaxVisits | None = None
    is_disabled: StrictBool | SkipJsonSchema[None] = None
    password: Password | None = None

    @field_validator("url", "is_disabled")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep it")
        return value


class FileOut(BaseModel):
    name: str
    size: int
    content_type: str


class LinkOut(BaseModel):
    code: str
    short_url: str
    url: str | None = Field(
        description="The target; null for a file, and for a password link read by anyone "
        "but its owner or an admin."
    )
    kind: Literal["url", "file"]
    file: FileOut | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    max_visits: int | None
    visits: int
    is_disabled: bool
    has_password: bool
    owner: str | None = Field(description="Id of the API key that created it; null if anonymous.")

    @classmethod
    def of(cls, link: Link, *, base_url: str, shows_target: bool = True) -> LinkOut:
        """``shows_target`` False (a password link read by someone not its owner or an
        admin): ``url`` and ``file`` are null, as if there were nothing to show."""
        stored = link.file if shows_target else None
        return cls(
            code=link.code,
            short_url=f"{base_url.rstrip('/')}/{link.code}",
            url=link.url if shows_target else None,
            kind=link.kind.value,
            file=FileOut(name=stored.name, size=stored.size, content_type=stored.content_type)
            if stored
            else None,
            created_at=link.created_at,
            updated_at=link.updated_at,
            expires_at=link.expires_at,
            max_visits=link.max_visits,
            visits=link.visits,
            is_disabled=link.is_disabled,
            has_password=link.has_password,
            owner=link.owner,
        )


class StatsOut(BaseModel):
    total: int
    per_day: dict[str, int] = Field(description="Visits per UTC day, keyed YYYY-MM-DD.")
    referrers: dict[str, int]
    agents: dict[str, int]
    bots: int
    humans: int

    @classmethod
    def of(cls, stats: LinkStats) -> StatsOut:
        return cls(
            total=stats.total,
            per_day=dict(stats.per_day),
            referrers=dict(stats.referrers),
            agents=dict(stats.agents),
            bots=stats.bots,
            humans=stats.humans,
        )


class LinkDetail(LinkOut):
    stats: StatsOut


class LinkList(BaseModel):
    items: list[LinkOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class KeyCreate(_Request):
    name: Annotated[Text, Field(min_length=1, max_length=128)]
    role: RoleName


class KeyOut(BaseModel):
    id: str
    name: str
    role: RoleName
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    is_revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            role=role_name(key.role),
            prefix=key.prefix,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            is_revoked=key.is_revoked,
        )


class KeyIssued(KeyOut):
    secret: str = Field(description="The key itself. Shown only here, once; store it now.")


class Whoami(BaseModel):
    key: KeyOut
    role: RoleName
    client_ip: str
    can: list[str] = Field(description="What this key may do: read, create, change_own, ...")


class ErrorOut(BaseModel):
    """Every error: a stable ``error`` kind, a human ``message``, the ``field`` at fault."""

    error: str
    message: str
    field: str | None = None
    details: list[dict[str, object]] | None = None


_ROLE_NAMES: dict[Role, RoleName] = {
    Role.VIEWER: "viewer",
    Role.EDITOR: "editor",
    Role.DEPLOYER: "deployer",
    Role.ADMIN: "admin",
}


def role_name(role: int) -> RoleName:
    return _ROLE_NAMES[Role(role)]
