"""``POST /api/v1/links`` answered without the framework: the API's busiest route.

FastAPI's middleware, routing and dependency solving cost more than the
create itself: ~400 µs of a ~1 ms create on one core (``bench/create.py``:
≈1,290 creations/s through the FastAPI route with the link writer, 2,000-2,700
without the framework; README, Performance). So the redirect front (``web/redirect.py``) hands a create
with a JSON body to ``QuickCreate``, which does what the route in
``web/api.py`` does with the same parts: ``LinkCreate`` validates the body,
``service.create_link_async`` creates through the worker's ``LinkWriter``,
``LinkOut`` is the answer, serialised as FastAPI does it, and an error of the
create (a taken code, a refused URL, the rate limit, the database down) is
answered with the error handlers' own bytes (``errors.error_response``).

Whatever is not that common case goes to the FastAPI route, with the body
already read: another content type, a missing or too large
``Content-Length``, a body that is not JSON or that ``LinkCreate`` refuses,
an ``Authorization`` header that names no editor key, anonymous creation
switched off. So every answer to a malformed request stays the framework's,
and the route stays the one the OpenAPI document describes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.types import Message, Receive

from steadylink.errors import SteadylinkError
from steadylink.links import service
from steadylink.types import Role
from steadylink.web.answer import Answer
from steadylink.web.auth import CREATE_BUCKET, bearer_secret
from steadylink.web.context import AppContext
from steadylink.web.errors import MAX_JSON_BYTES, error_response
from steadylink.web.schemas import LinkCreate, LinkOut

CREATE_PATH = "/api/v1/links"
# What FastAPI serialises a response model with (its ``dump_json`` fast path).
_LINK_OUT = TypeAdapter(LinkOut)


def takes(content_type: str | None, content_length: str | None) -> bool:
    """Whether a create's body is one to read here: JSON, its declared length within the limit."""
    if content_type is None or content_length is None or not content_length.isdigit():
        return False
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return False
    return int(content_length) <= MAX_JSON_BYTES


def _answer_of(response: Response) -> Answer:
    return Answer(
        response.status_code,
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
        bytes(response.body),
    )


class QuickCreate:
    """The common create, answered as the FastAPI route answers it (module docstring)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def answer(self, body: bytes, *, authorization: str | None, client: str) -> Answer | None:
        """The create's answer, or None to leave the request to the framework's route.

        ``client`` is the caller's address (``web/auth.client_address``). A key
        this worker has not seen within a second is looked up in a thread.
        """
        try:
            fields = LinkCreate.model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError):
            return None  # the route answers 400/422 and names the field
        ctx = self.ctx
        try:
            if authorization is None:
                if not ctx.settings.links.anonymous_create:
                    return None
                owner = None
                ctx.limiter.check(CREATE_BUCKET, client)
            else:
                secret = bearer_secret(authorization)
                key = None
                if secret is not None:
                    key = ctx.keys.remembered(secret) or await ctx.offload.run(ctx.keys.authenticate, secret)
                if key is None or key.role < Role.EDITOR:
                    return None  # the route answers 401 or 403
                owner = key.id
            link = await service.create_link_async(
                insert=ctx.writer.insert,
                settings=ctx.settings,
                clock=ctx.clock,
                rng=ctx.rng,
                new=fields.to_new(owner),
            )
        except SteadylinkError as exc:
            if exc.status >= 500:
                raise  # the front answers a fixed sentence and the request id, and logs it
            return _answer_of(error_response(exc))
        ctx.cache.invalidate(link.code)  # in case a miss for this code was remembered
        payload = _LINK_OUT.dump_json(LinkOut.of(link, base_url=ctx.settings.base_url))
        # The route's headers in its order: its Response(media_type="application/json"),
        # then the Location it sets. Built as they go out, not through a Response.
        return Answer(
            201,
            [
                ("content-length", str(len(payload))),
                ("content-type", "application/json"),
                ("location", f"{CREATE_PATH}/{link.code}"),
            ],
            payload,
        )


async def read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """An ASGI request's body (None if over ``MAX_JSON_BYTES`` or cut off) and a
    ``receive`` that hands the same messages on again to whoever reads next."""
    seen: list[Message] = []
    size = 0
    body: bytes | None = None
    while True:
        message = await receive()
        seen.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > MAX_JSON_BYTES:
            break
        if not message.get("more_body", False):
            body = b"".join(m.get("body", b"") for m in seen)
            break
    return body, _replay(seen, receive)


def _replay(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
