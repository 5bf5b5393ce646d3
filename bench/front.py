"""In-process cost of the front's hot path: a memory redirect through ``__rsgi__``.

    .venv/bin/python bench/front.py [--requests 200000] [--rounds 5]

``bench/redirect.py`` measures the whole server with wrk, and on this shared
2-core VM its rounds drift by 2-3x with other load; this one times only our
code per request — the app's ``__rsgi__`` answering a plain link held in
memory, with the access log and visit counting on — against a stand-in for
granian's protocol that does nothing, so a change of a few hundred
nanoseconds shows. To compare two versions, run it with each version's
``src`` first on ``PYTHONPATH`` (e.g. a ``git archive`` of the older commit),
alternately. Prints µs per request for each round and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from steadylink.links import service
from steadylink.links.model import NewLink
from steadylink.settings import load_settings
from steadylink.web.app import build_context, create_app, run_lifespan


class Headers(dict[str, str]):
    pass


class Scope:
    proto = "http"
    http_version = "1.1"
    method = "GET"
    scheme = "http"
    query_string = ""
    client = "127.0.0.1:40000"
    server = "/run/slot.sock"

    def __init__(self, path: str) -> None:
        self.path = path
        self.headers = Headers({"host": "s.example", "user-agent": "wrk", "x-forwarded-for": "198.51.100.7"})


class Protocol:
    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        return None


async def measure(requests: int, rounds: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="steadylink-front-") as tmp:
        settings = load_settings(environ={}, data_dir=Path(tmp))
        ctx = build_context(settings)
        codes = [
            service.create_link(
                store=ctx.store, settings=settings, clock=ctx.clock, rng=ctx.rng,
                new=NewLink(url=f"https://example.com/{i}"),
            ).code
            for i in range(1000)
        ]  # fmt: skip
        app = create_app(settings, ctx=ctx, log_stream=io.StringIO())
        scopes = [Scope(f"/{code}") for code in codes]
        protocol = Protocol()
        figures = []
        async with run_lifespan(app):
            for scope in scopes:  # held in memory from now on
                await app.__rsgi__(scope, protocol)
            for _ in range(rounds):
                started = time.perf_counter()
                for i in range(requests):
                    await app.__rsgi__(scopes[i % 1000], protocol)
                figures.append((time.perf_counter() - started) / requests * 1e6)
                ctx.clicks.take()  # as the background flush would
                app.log._lines.clear()
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.requests, args.rounds))
    print("rounds:", ", ".join(f"{f:.2f}" for f in figures), "µs a request")
    print(f"median {statistics.median(figures):.2f} µs a request (memory redirect through __rsgi__)")


if __name__ == "__main__":
    main()
