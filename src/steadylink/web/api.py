"""The REST API, mounted at ``/api/v1``: links, files, keys, whoami.

Handlers only translate HTTP to the link service and back; the rules live in
``links.service``. No store call runs on the event loop, which also answers
the worker's redirects: a read or change that waited there for a silent
database would hold every redirect behind it. Handlers that only call the
store are plain ``def`` (FastAPI runs them in its thread pool, one hand-off
per request); a create is ``async def`` because the worker's link-writer
thread writes it, and an upload's store calls go to the thread pool. Who may
do what is ``web.auth``'s business.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from steadylink.clock import utc
from steadylink.errors import Conflict, InvalidInput, NotFound
from steadylink.links import service
from steadylink.links.codes import check_custom_code, looks_like_code
from steadylink.links.model import UNSET, Link, LinkChanges, NewLink, StoredFile
from steadylink.links.service import MAX_VISITS_LIMIT
from steadylink.types import Role
from steadylink.web.auth import Caller, creator, ensure_can_change, require
from steadylink.web.context import AppContext, get_context, provide_context
from steadylink.web.schemas import (
    Code,
    ErrorOut,
    IsoDateTime,
    IsoDay,
    KeyCreate,
    KeyIssued,
    KeyOut,
    LinkCreate,
    LinkDetail,
    LinkList,
    LinkOut,
    LinkUpdate,
    Password,
    StatsOut,
    Text,
    Whoami,
)

router = APIRouter()

_CHUNK = 64 * 1024
_KEY_ID = re.compile(r"[0-9a-f]{1,64}")
_MESSAGES = {
    400: "The request could not be read.",
    401: "No API key, or an unknown or revoked one (anonymous creation may be off).",
    403: "The key's role, or the link's owner, does not allow this.",
    404: "No such link or key.",
    409: "The code is taken (codes differ by more than letter case), or the key name is.",
    413: "The body or the uploaded file is over its limit.",
    422: "A field is not valid; `field` names it.",
    429: "Too many creations from this client; see Retry-After.",
}

Ctx = Annotated[AppContext, Depends(provide_context)]
Viewer = Annotated[Caller, require(Role.VIEWER)]
Editor = Annotated[Caller, require(Role.EDITOR)]
Admin = Annotated[Caller, require(Role.ADMIN)]
Creator = Annotated[Caller, Depends(creator)]
# The key is optional where anonymous callers may create: `{}` is "no security".
ANONYMOUS_ALLOWED: dict[str, Any] = {"security": [{}]}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {s: {"model": ErrorOut, "description": _MESSAGES[s]} for s in statuses}


# links -----------------------------------------------------------------------
# The dependencies are ``async def``: a key seen in the last second costs no
# thread hand-off (``web.auth``). Routes that call the store are plain ``def``
# so their calls run in FastAPI's thread pool, not on the loop that serves
# redirects, and not in the redirect's own small pool (``web/offload.py``):
# a slow listing holds only API threads.


@router.post(
    "/links",
    status_code=201,
    response_model=LinkOut,
    responses=errors(400, 401, 403, 409, 413, 422, 429),
    openapi_extra=ANONYMOUS_ALLOWED,
    summary="Create a link",
)
async def create_link(body: LinkCreate, caller: Creator, request: Request, response: Response) -> LinkOut:
    # The context straight from the request, not through ``Ctx``: every
    # dependency is one more node FastAPI solves per request, on the API's
    # busiest route.
    # (``web/create.py`` answers most creates before they get here, the same way.)
    ctx = get_context(request)
    link = await service.create_link_async(
        insert=ctx.writer.insert, settings=ctx.settings, clock=ctx.clock, rng=ctx.rng,
        new=body.to_new(caller.owner),
    )
    ctx.cache.invalidate(link.code)  # in case a miss for this code was remembered
    response.headers["Location"] = f"/api/v1/links/{link.code}"
    return LinkOut.of(link, base_url=ctx.settings.base_url)


@router.get(
    "/links",
    response_model=LinkList,
    responses=errors(400, 401, 403, 422),
    summary="List links, newest first",
)
def list_links(
    caller: Viewer,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    q: Annotated[Text | None, Query(max_length=200, description="Text in code or URL.")] = None,
    created_from: Annotated[
        IsoDay | None, Query(description="Created at or after (a date: its start).")
    ] = None,
    created_to: Annotated[
        IsoDay | None, Query(description="Created before (a date: the whole day counts).")
    ] = None,
) -> LinkList:
    page = ctx.store.list_links(
        text=q or None,
        # otherwise a search by URL would tell who is not allowed to see them what
        # password links point to
        protected_urls_of=None if caller.has_role(Role.ADMIN) else (caller.owner or ""),
        created_from=_instant(created_from, end_of_day=False),
        created_to=_instant(created_to, end_of_day=True),
        limit=limit,
        offset=offset,
    )
    following = page.offset + page.limit
    return LinkList(
        items=[
            LinkOut.of(link, base_url=ctx.settings.base_url, shows_target=caller.sees_target_of(link))
            for link in page.links
        ],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
        next_offset=following if following < page.total else None,
    )


@router.get(
    "/links/{code}",
    response_model=LinkDetail,
    responses=errors(400, 401, 403, 404),
    summary="Show a link with its visit stats",
)
def show_link(code: str, caller: Viewer, ctx: Ctx) -> LinkDetail:
    link = service.get_link(store=ctx.store, code=_stored_code(code))
    stats = ctx.store.link_stats(link.code)
    out = LinkOut.of(link, base_url=ctx.settings.base_url, shows_target=caller.sees_target_of(link))
    return LinkDetail(**out.model_dump(), stats=StatsOut.of(stats))


@router.patch(
    "/links/{code}",
    response_model=LinkOut,
    responses=errors(400, 401, 403, 404, 413, 422),
    summary="Change a link (only the fields sent)",
)
def change_link(code: str, body: LinkUpdate, caller: Editor, ctx: Ctx) -> LinkOut:
    link = service.get_link(store=ctx.store, code=_stored_code(code))
    ensure_can_change(caller, link)
    sent = body.model_fields_set
    changes = LinkChanges(
        url=body.url if "url" in sent and body.url is not None else UNSET,
        expires_at=body.expires_at if "expires_at" in sent else UNSET,
        max_visits=body.max_visits if "max_visits" in sent else UNSET,
        is_disabled=body.is_disabled if "is_disabled" in sent and body.is_disabled is not None else UNSET,
        password=body.password if "password" in sent else UNSET,
    )
    try:
        changed = service.change_link(
            store=ctx.store, settings=ctx.settings, clock=ctx.clock, code=link.code, changes=changes
        )
    finally:
        ctx.cache.invalidate(link.code)
    return LinkOut.of(changed, base_url=ctx.settings.base_url)


@router.delete(
    "/links/{code}",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
    summary="Delete a link and its stats",
)
def delete_link(code: str, caller: Editor, ctx: Ctx) -> Response:
    link = service.get_link(store=ctx.store, code=_stored_code(code))
    ensure_can_change(caller, link)
    try:
        service.delete_link(store=ctx.store, code=link.code, files=ctx.files)
    finally:
        ctx.cache.invalidate(link.code)
    return Response(status_code=204)


# files -----------------------------------------------------------------------


@router.post(
    "/files",
    status_code=201,
    response_model=LinkOut,
    responses=errors(400, 401, 403, 409, 413, 422, 429),
    openapi_extra=ANONYMOUS_ALLOWED,
    summary="Upload a file and get a short link to it",
)
async def upload_file(
    file: Annotated[UploadFile, File(description="The file; served back as an attachment.")],
    caller: Creator,
    ctx: Ctx,
    response: Response,
    code: Annotated[Code | None, Form()] = None,
    expires_at: Annotated[IsoDateTime | None, Form()] = None,
    max_visits: Annotated[int | None, Form(ge=1, le=MAX_VISITS_LIMIT)] = None,
    password: Annotated[Password | None, Form()] = None,
) -> LinkOut:
    if code is not None:
        # Refuse a bad or taken code before storing anything.
        check_custom_code(code)
        if await run_in_threadpool(ctx.store.get_link, code) is not None:
            raise Conflict(f"The code {code!r} is taken; choose another.", field="code")
    if expires_at is not None and utc(expires_at) <= ctx.clock.now():
        raise InvalidInput("expires_at is in the past.", field="expires_at")
    async with ctx.files.uploading():  # no removal of this file until its link is stored
        stored = await ctx.files.save_stream(
            _chunks_of(file), name=file.filename or "file", content_type=file.content_type
        )
        link = await run_in_threadpool(
            _create_file_link, ctx, caller, stored, code, expires_at, max_visits, password
        )
    ctx.cache.invalidate(link.code)
    response.headers["Location"] = f"/api/v1/links/{link.code}"
    return LinkOut.of(link, base_url=ctx.settings.base_url)


def _create_file_link(
    ctx: AppContext,
    caller: Caller,
    stored: StoredFile,
    code: str | None,
    expires_at: datetime | None,
    max_visits: int | None,
    password: str | None,
) -> Link:
    new = NewLink(
        file=stored,
        code=code,
        expires_at=expires_at,
        max_visits=max_visits,
        password=password or None,
        owner=caller.owner,
    )
    return service.create_link(store=ctx.store, settings=ctx.settings, clock=ctx.clock, rng=ctx.rng, new=new)


async def _chunks_of(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


# keys ------------------------------------------------------------------------


@router.get(
    "/keys",
    response_model=list[KeyOut],
    responses=errors(400, 401, 403),
    summary="List API keys (admin)",
)
def list_keys(caller: Admin, ctx: Ctx) -> list[KeyOut]:
    return [KeyOut.of(key) for key in ctx.store.list_keys()]


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyIssued,
    responses=errors(400, 401, 403, 409, 413, 422),
    summary="Create an API key (admin); its secret is shown once",
)
def create_key(body: KeyCreate, caller: Admin, ctx: Ctx) -> KeyIssued:
    issued = service.create_key(store=ctx.store, clock=ctx.clock, name=body.name, role=Role.parse(body.role))
    return KeyIssued(**KeyOut.of(issued.key).model_dump(), secret=issued.secret)


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404),
    summary="Revoke an API key (admin)",
)
def revoke_key(key_id: str, caller: Admin, ctx: Ctx) -> Response:
    if not _KEY_ID.fullmatch(key_id):
        raise NotFound(f"No active key with id {key_id!r}.", field="id")
    try:
        service.revoke_key(store=ctx.store, clock=ctx.clock, key_id=key_id)
    finally:
        ctx.keys.forget(key_id)
    return Response(status_code=204)


@router.get(
    "/whoami",
    response_model=Whoami,
    responses=errors(400, 401, 403),
    summary="The calling key and what it may do",
)
async def whoami(caller: Viewer) -> Whoami:
    assert caller.key is not None
    key = KeyOut.of(caller.key)
    return Whoami(key=key, role=key.role, client_ip=caller.client_ip, can=caller.abilities())


# helpers ---------------------------------------------------------------------


def _stored_code(code: str) -> str:
    """``code`` if it could be stored; anything else (``..``, NUL, ``/``) is simply unknown."""
    if not looks_like_code(code):
        raise NotFound(f"No link with code {code!r}.", field="code")
    return code


def _instant(value: date | datetime | None, *, end_of_day: bool) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc(value)
    start = datetime.combine(value, time(), tzinfo=UTC)
    return start + timedelta(days=1) if end_of_day else start
