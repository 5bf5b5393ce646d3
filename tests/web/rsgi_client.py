"""An in-process RSGI client for httpx: the app's ``__rsgi__`` with granian's protocol shapes.

granian itself runs the app in the end-to-end tests (``steadylink serve``);
this lets the in-process suites drive the same RSGI entry point without a
server: a scope with granian's attributes, headers with its ``get``/``items``,
and a protocol whose ``response_*`` calls are collected into an httpx response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from steadylink.web.app import run_lifespan


class Headers:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = [(k.lower(), v) for k, v in pairs]

    def get(self, key: str, default: Any = None) -> Any:
        return next((v for k, v in self._pairs if k == key), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def keys(self) -> list[str]:
        return [k for k, _ in self._pairs]

    def __contains__(self, key: str) -> bool:
        return any(k == key for k, _ in self._pairs)


class Scope:
    proto = "http"
    http_version = "1.1"
    rsgi_version = "1.5"
    server = "127.0.0.1:8080"
    client = "127.0.0.1:40000"
    authority = None

    def __init__(self, request: httpx.Request) -> None:
        self.scheme = request.url.scheme
        self.method = request.method
        self.path = request.url.path  # decoded, as granian gives it
        self.query_string = request.url.query.decode("latin-1")
        self.headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw])


class Stream:
    def __init__(self, into: bytearray) -> None:
        self._into = into

    async def send_bytes(self, data: bytes) -> None:
        self._into += data

    async def send_str(self, data: str) -> None:
        self._into += data.encode()


class Protocol:
    def __init__(self, body: bytes) -> None:
        self._body = body
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.content = bytearray()

    async def __call__(self) -> bytes:
        return self._body

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._body), 65536):
            yield self._body[start : start + 65536]

    async def client_disconnect(self) -> None:
        await asyncio.Event().wait()  # the client never goes away here

    def _start(self, status: int, headers: list[tuple[str, str]]) -> None:
        assert self.status == 0, "a second response on one request"
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers)
        self.status, self.headers = status, headers

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        self._start(status, headers)

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self._start(status, headers)
        self.content += body

    def response_str(self, status: int, headers: list[tuple[str, str]], body: str) -> None:
        self.response_bytes(status, headers, body.encode())

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Stream:
        self._start(status, headers)
        return Stream(self.content)


class RsgiTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self._app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        protocol = Protocol(await request.aread())
        await self._app.__rsgi__(Scope(request), protocol)
        assert protocol.status, "the app returned without answering"
        return httpx.Response(protocol.status, headers=protocol.headers, content=bytes(protocol.content))


@asynccontextmanager
async def rsgi_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on ``app``'s RSGI entry point, with the app's lifespan around it."""
    async with run_lifespan(app), httpx.AsyncClient(transport=RsgiTransport(app), base_url="http://t") as client:
        yield client
