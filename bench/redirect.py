"""Redirect throughput on a big SQLite store, against HAProxy's static redirect.

    .venv/bin/python bench/redirect.py [--links 1000000] [--seconds 10] [--cache-size N]

Fills a fresh SQLite store with N links (one ``executemany`` transaction),
serves it with ONE granian worker (RSGI, as ``steadylink serve`` runs it)
pinned to core 0, drives ``wrk -t1 -c64`` pinned to core 1 over random
existing codes (the Lua script rebuilds codes from random indexes:
``b0000000`` ... ), then measures the ceiling — HAProxy answering
``http-request redirect ... code 302`` on core 0 — with the same wrk and
script. Access logging and visit counting stay on, as in production: the
visit compactor that ``steadylink serve`` starts runs here too, on core 1
beside wrk, and its CPU time is printed. Every process it starts is stopped
at the end.

``--cache-size`` below the number of links shows the cost of cache misses
(each one a store read); the default cache holds 1,000,000 links.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import (
    cpu_seconds,
    free_port,
    rss_mb,
    run_wrk,
    start_compactor,
    start_granian,
    start_process,
    stop,
)

from steadylink.links.migrate import upgrade_to_head
from steadylink.links.sql_store import open_store

SERVER_CORE, WRK_CORE = 0, 1

LUA = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/b%07d", math.random(0, {last})))
end
"""

HAPROXY = """
global
    nbthread 1
defaults
    mode http
    timeout client 30s
    timeout server 30s
    timeout connect 5s
frontend redirect
    bind 127.0.0.1:{port}
    http-request redirect location https://example.com/landing/page?id=1 code 302
"""


def fill_store(db: Path, links: int) -> None:
    store = open_store(f"sqlite:///{db}")
    upgrade_to_head(store.engine)
    store.close()
    now = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None).isoformat(sep=" ")
    conn = sqlite3.connect(db)
    rows = (
        (f"b{i:07d}", f"b{i:07d}", "url", f"https://example.com/landing/page?id={i}", now, now)
        for i in range(links)
    )
    with conn:
        conn.executemany(
            "INSERT INTO links (code, code_folded, kind, url, created_at, updated_at, visits, "
            "is_disabled) VALUES (?, ?, ?, ?, ?, ?, 0, 0)",
            rows,
        )
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--cache-size", type=int, default=None, help="links.cache_size of the worker")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="steadylink-bench-"))
    started = time.monotonic()
    fill_store(work / "links.db", args.links)
    print(f"filled {args.links:,} links in {time.monotonic() - started:.1f} s ({work})")
    script = work / "codes.lua"
    script.write_text(LUA.replace("{last}", str(args.links - 1)))

    port = free_port()
    env = {"STEADYLINK_DATA_DIR": str(work), "STEADYLINK_RELEASE_ID": "bench"}
    if args.cache_size is not None:
        env["STEADYLINK_LINKS_CACHE_SIZE"] = str(args.cache_size)
    started = time.monotonic()
    server = start_granian(port, env, core=SERVER_CORE, log=work / "granian.log")
    print(f"worker answering after {time.monotonic() - started:.1f} s (cache warm-up included)")
    compactor = start_compactor(server, env, core=WRK_CORE, log=work / "compactor.log")
    try:
        url = f"http://127.0.0.1:{port}"
        run_wrk(url, script=script, seconds=2, core=WRK_CORE)  # warm-up
        compactor_cpu = cpu_seconds(compactor.pid)
        app = run_wrk(url, script=script, seconds=args.seconds, core=WRK_CORE)
        compactor_cpu = cpu_seconds(compactor.pid) - compactor_cpu
        memory = rss_mb(server.pid)
    finally:
        stop(server)
        compactor.wait(timeout=60)  # it folds what is left once the server is gone
    visits = count_visits(work / "links.db")

    port = free_port()
    config = work / "haproxy.cfg"
    config.write_text(HAPROXY.replace("{port}", str(port)))
    haproxy = start_process(
        ["taskset", "-c", str(SERVER_CORE), "haproxy", "-db", "-f", str(config)],
        log=work / "haproxy.log", ready_url=f"http://127.0.0.1:{port}/",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        run_wrk(url, script=script, seconds=2, core=WRK_CORE)
        ceiling = run_wrk(url, script=script, seconds=args.seconds, core=WRK_CORE)
    finally:
        stop(haproxy)

    print(app.line("steadylink (granian, 1 core)"))
    print(ceiling.line("HAProxy static redirect"))
    ratio = app.requests_per_second / ceiling.requests_per_second
    print(f"ratio {ratio:.2f} (target >= 0.35); steadylink p99 {app.p99_ms:.2f} ms (target < 10 ms)")
    measured = app.requests_per_second * args.seconds
    print(
        f"visits folded into stats: {visits:,} (all requests, warm-up included); compactor CPU "
        f"{compactor_cpu:.1f} s over the {args.seconds} s run, "
        f"{compactor_cpu / measured * 1e6:.1f} µs a visit"
    )
    print(f"server memory (granian + worker RSS): {memory:,.0f} MB")


def count_visits(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT sum(visits) FROM links").fetchone()[0])


if __name__ == "__main__":
    main()
