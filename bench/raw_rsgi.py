"""The least an RSGI handler can do: a fixed 302, for ``bench/app_front.py`` to compare against.

Served by granian exactly as the app is; every request but the health check
gets the answer the app gives a plain link, headers and body alike, with no
lookup, log or visit.
"""

from __future__ import annotations

from typing import Any

HEADERS = [
    ("location", "https://example.com/landing/page?id=1"),
    ("cache-control", "private, max-age=0"),
    ("content-type", "text/plain; charset=utf-8"),
]


class RawRedirect:
    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.path == "/healthz":
            protocol.response_bytes(200, [("content-type", "text/plain")], b"ok\n")
        else:
            protocol.response_bytes(302, HEADERS, b"Found\n")


app = RawRedirect()
