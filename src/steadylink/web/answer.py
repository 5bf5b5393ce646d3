"""What the front answers, whatever protocol carries it: a status, headers, a body.

``web/redirect.py`` decides every answer it gives itself — a redirect, a
quick create, an error — as an ``Answer``; its RSGI and ASGI entry points only
send it. Headers are ``str`` pairs in the order they go out, as RSGI takes
them (the ASGI side encodes them). Not frozen: it is made on every redirect,
and a frozen dataclass costs four times as much to build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from steadylink.errors import SteadylinkError
from steadylink.web.errors import error_headers, server_error_body

Headers = list[tuple[str, str]]


@dataclass(slots=True)
class Answer:
    status: int
    headers: Headers
    body: bytes

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]


def error_answer(exc: BaseException, request_id: str) -> Answer:
    """The JSON answer to ``exc``: its own status and sentence, or a 500 that says nothing inside.

    Carries what the framework's handlers send with the same error
    (``WWW-Authenticate`` on a 401, ``Retry-After`` on a 429) and the request id.
    """
    headers: Headers
    body: dict[str, object]
    if isinstance(exc, SteadylinkError) and exc.status < 500:
        status, body = exc.status, exc.to_json()
        extra = [(k.lower(), v) for k, v in error_headers(exc).items()]
    else:  # the same fixed sentence the framework's handlers give a 5xx
        status, body = server_error_body(exc, request_id)
        extra = []
    body["request_id"] = request_id
    payload = json.dumps(body).encode()
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(payload))),
        ("x-request-id", request_id),
        *extra,
    ]
    return Answer(status, headers, payload)
