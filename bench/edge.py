"""Edge redirects on a big store: HAProxy answering plain links from its map, visits counted.

    .venv/bin/python bench/edge.py [--links 1000000] [--rounds 5] [--seconds 5] [--stop-seconds 30]

Fills a fresh SQLite store with N plain links (as ``bench/redirect.py``),
writes the link map the way ``steadylink up`` does (``LinkMapSync.write_file``)
and starts HAProxy from ``edge/config.py`` — the production config, one
thread — pinned to core 0 with the visit reader (``steadylink edge
read-visits``) beside it: the front door and its visit counting share one
core. wrk (``-t1 -c64``, random existing codes) runs on core 1 against it and
against HAProxy's static 302 on core 0, in alternating rounds (this VM's
speed drifts). The compactor runs on core 1 too, paused while wrk measures,
and folds each round's visits before the next.

Then:

- memory: HAProxy's resident memory with the map, per link; the time HAProxy
  takes to start with it, and the time a rebuild through the runtime API
  takes (what a guard restart does);
- workers stopped: one granian worker serves the slot; wrk runs for
  ``--stop-seconds`` + 10 s while the worker is SIGSTOPped for
  ``--stop-seconds``: every plain-link answer must still come, and every
  visit of that time must reach the stats.

At the end every visit wrk made must be in the store (``visits`` summed), and
the reader's count of lost visits is printed. Every process it starts is
stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import VENV_BIN, WrkFigures, cpu_seconds, free_port, parse_wrk, start_process, stop
from redirect import HAPROXY, LUA, count_visits, fill_store, wait_until_folded

from steadylink.edge import EdgeConfig, LinkMapSync, SlotSetting, start_edge, stop_edge
from steadylink.edge.process import read_master_status
from steadylink.edge.visitreader import STATE_FILE
from steadylink.links.spool import VisitSpool
from steadylink.links.sql_store import open_store

EDGE_CORE, WRK_CORE = 0, 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=5, help="per round and server")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stop-seconds", type=int, default=30, help="how long the worker is stopped")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sl-bench-edge-", dir="/tmp"))
    started = time.monotonic()
    fill_store(work / "links.db", args.links)
    print(f"filled {args.links:,} links in {time.monotonic() - started:.1f} s ({work})")
    script = work / "codes.lua"
    script.write_text(LUA.replace("{last}", str(args.links - 1)))
    env = {"STEADYLINK_DATA_DIR": str(work), "STEADYLINK_RELEASE_ID": "bench"}
    store = open_store(f"sqlite:///{work / 'links.db'}")
    config = EdgeConfig(
        run_dir=work / "run", port=free_port(), slots=1, nbthread=1, edge_redirects=True,
        initial={0: SlotSetting(100, "ready")},
    )  # fmt: skip
    config.run_dir.mkdir()
    sync = LinkMapSync(store, lambda: edge.runtime, config.link_map, limit=args.links)
    started = time.monotonic()
    sync.write_file()
    print(f"map file: {sync.size:,} links written in {time.monotonic() - started:.1f} s")

    processes: list[subprocess.Popen[bytes]] = []
    reader = pinned([sys.executable, "-m", "steadylink", "--data-dir", str(work), "edge", "read-visits"],
                    EDGE_CORE, work / "reader.log", env)  # fmt: skip
    processes.append(reader)
    started = time.monotonic()
    edge = start_edge(config, timeout=120)
    load_seconds = time.monotonic() - started
    pin_all([edge.pid, *read_master_status(config).workers], EDGE_CORE)
    worker = read_master_status(config).workers[0]
    with_map_mb = rss_mb(worker)
    print(f"HAProxy started with the map in {load_seconds:.1f} s; worker RSS {with_map_mb:,.0f} MB")
    compactor = pinned([sys.executable, "-m", "steadylink", "compact"], WRK_CORE, work / "compactor.log", env)
    processes.append(compactor)
    ceiling_port = free_port()
    (work / "ceiling.cfg").write_text(HAPROXY.replace("{port}", str(ceiling_port)))
    ceiling = start_process(
        ["taskset", "-c", str(EDGE_CORE), "haproxy", "-db", "-f", str(work / "ceiling.cfg")],
        log=work / "ceiling.log", ready_url=f"http://127.0.0.1:{ceiling_port}/",
    )  # fmt: skip
    processes.append(ceiling)
    edge_url, ceiling_url = f"http://127.0.0.1:{config.port}", f"http://127.0.0.1:{ceiling_port}"
    edges: list[WrkFigures] = []
    ceilings: list[WrkFigures] = []
    # CPU time per answer, of HAProxy (and, for the edge, of the visit reader too):
    # a figure that a busy VM inflates far less than requests a second
    edge_cpu: list[tuple[float, float]] = []  # (HAProxy µs, reader µs) per request
    ceiling_cpu: list[float] = []
    edge_requests = 0
    granian = None
    try:
        edge_requests += wrk(edge_url, script, 2)[1]  # warm-up
        wrk(ceiling_url, script, 2)
        for _ in range(args.rounds):
            compactor.send_signal(signal.SIGSTOP)
            before = cpu_seconds(worker), cpu_seconds(reader.pid)
            figures, requests = wrk(edge_url, script, args.seconds)
            time.sleep(0.5)  # the reader takes in the last of the round's visits
            edge_cpu.append((
                (cpu_seconds(worker) - before[0]) * 1e6 / requests,
                (cpu_seconds(reader.pid) - before[1]) * 1e6 / requests,
            ))  # fmt: skip
            edges.append(figures)
            edge_requests += requests
            compactor.send_signal(signal.SIGCONT)
            wait_until_folded(VisitSpool(work / "visits"))
            before_ceiling = cpu_seconds(ceiling.pid)
            figures, requests = wrk(ceiling_url, script, args.seconds)
            ceiling_cpu.append((cpu_seconds(ceiling.pid) - before_ceiling) * 1e6 / requests)
            ceilings.append(figures)

        # a guard restart: the whole map again through the runtime API, HAProxy serving meanwhile
        during = subprocess.Popen(wrk_argv(edge_url, script, 30), stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        started = time.monotonic()
        sync.rebuild()
        rebuild_seconds = time.monotonic() - started
        after_rebuild_mb = rss_mb(worker)
        output, _ = during.communicate(timeout=90)
        while_rebuilding = parse_wrk(output)
        slowest = max_latency(output)
        edge_requests += total_requests(output)

        # every worker stopped for a while, under load
        granian = start_worker(config.slot_socket(0), env, work / "granian.log")
        processes.append(granian)
        wait_until_ready(config.slot_socket(0), granian)
        argv = wrk_argv(edge_url, script, args.stop_seconds + 10)
        run = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        time.sleep(5)
        os.killpg(granian.pid, signal.SIGSTOP)
        time.sleep(args.stop_seconds)
        os.killpg(granian.pid, signal.SIGCONT)
        output, _ = run.communicate(timeout=args.stop_seconds + 60)
        stopped = parse_wrk(output)
        stopped_requests = total_requests(output)
        edge_requests += stopped_requests
    finally:
        stop_edge(edge)
        time.sleep(2)  # the reader writes what HAProxy sent last
        for process in processes:
            if process is not compactor:
                stop(process)
        wait_until_folded(VisitSpool(work / "visits"))
        stop(compactor)
    visits = count_visits(work / "links.db")
    state = json.loads((config.run_dir / STATE_FILE).read_text())

    ratios = [e.requests_per_second / c.requests_per_second for e, c in zip(edges, ceilings, strict=True)]
    for i, (one, ceil) in enumerate(zip(edges, ceilings, strict=True), 1):
        print(f"round {i}: ratio {ratios[i - 1]:.2f}")
        print("  " + one.line("edge redirect + visits"))
        print("  " + ceil.line("HAProxy static redirect"))
    edge_rps = statistics.median(e.requests_per_second for e in edges)
    print(
        f"median of {args.rounds} rounds: edge {edge_rps:,.0f} req/s, "
        f"p99 {statistics.median(e.p99_ms for e in edges):.2f} ms; HAProxy static "
        f"{statistics.median(c.requests_per_second for c in ceilings):,.0f} req/s"
    )
    print(f"ratio {statistics.median(ratios):.2f} (median; target >= 0.8)")
    haproxy_us = statistics.median(h for h, _ in edge_cpu)
    reader_us = statistics.median(r for _, r in edge_cpu)
    static_us = statistics.median(ceiling_cpu)
    print(
        f"CPU per answer (median): static 302 {static_us:.2f} µs; edge {haproxy_us:.2f} µs HAProxy "
        f"+ {reader_us:.2f} µs visit reader; ratio {static_us / (haproxy_us + reader_us):.2f} "
        f"(HAProxy alone {static_us / haproxy_us:.2f})"
    )
    print(
        f"worker stopped {args.stop_seconds} s under load: {stopped_requests:,} requests, "
        f"{stopped.errors}; {stopped.requests_per_second:,.0f} req/s"
    )
    print(
        f"visits: wrk made {edge_requests:,} (not counting the answers in flight when each run "
        f"ended, up to 64 a run); the reader counted {state['received']:,}, "
        f"lost {state['lost']}; folded into the store {visits:,}"
    )
    print(
        f"HAProxy memory: worker RSS {with_map_mb:,.0f} MB with {args.links:,} links "
        f"({with_map_mb * 1e6 / args.links:,.0f} bytes a link, the empty process included), "
        f"{after_rebuild_mb:,.0f} MB after a rebuild; start with the map {load_seconds:.1f} s, "
        f"rebuild through the runtime API {rebuild_seconds:.1f} s"
    )
    print(
        f"while it rebuilt (30 s of wrk around it): {while_rebuilding.requests_per_second:,.0f} req/s, "
        f"p99 {while_rebuilding.p99_ms:.1f} ms, slowest {slowest}, {while_rebuilding.errors}"
    )


def pinned(argv: list[str], core: int, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["taskset", "-c", str(core), *argv], env={**os.environ, **env}, stdout=log.open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def pin_all(pids: list[int], core: int) -> None:
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(pid)], check=True, capture_output=True)


def start_worker(
    socket: Path, env: dict[str, str], log: Path, target: str = "steadylink.web.app:app"
) -> subprocess.Popen[bytes]:
    """One granian worker (RSGI, as production runs it) on ``socket``, pinned to the edge's core."""
    argv = [
        "taskset", "-c", str(EDGE_CORE), str(VENV_BIN / "granian"), "--interface", "rsgi", "--loop", "uvloop",
        "--uds", str(socket), "--workers", "1", "--no-ws", "--http", "1", target,
    ]  # fmt: skip
    out = log.open("wb")
    return subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_until_ready(socket: Path, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Until the worker answers /healthz on its socket (it warms its cache first)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}")
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), timeout=1) as client:
                if client.get("http://worker/healthz").status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the worker did not answer within {timeout} s")


def wrk_argv(url: str, script: Path, seconds: int) -> list[str]:
    return [
        "taskset", "-c", str(WRK_CORE), "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency",
        "-s", str(script), url,
    ]  # fmt: skip


def wrk(url: str, script: Path, seconds: int) -> tuple[WrkFigures, int]:
    output = subprocess.run(
        wrk_argv(url, script, seconds), capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    return parse_wrk(output), total_requests(output)


def total_requests(output: str) -> int:
    found = re.search(r"(\d+) requests in", output)
    assert found is not None, output
    return int(found.group(1))


def max_latency(output: str) -> str:
    found = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", output)
    return found.group(1) if found else "?"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    main()
