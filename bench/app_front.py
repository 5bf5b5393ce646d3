"""The app's own redirect behind the front door, against a raw granian handler behind the same door.

    .venv/bin/python bench/app_front.py [--links 1000000] [--rounds 5] [--seconds 5]

The edge answers most plain links itself; what it cannot answer, and every
redirect while ``[edge] redirects = false``, is the app's. This measures that
path as users get it: HAProxy from the production config (``edge/config.py``,
edge redirects off, one thread) in front of one granian worker serving
``steadylink.web.app:app`` over its slot's unix socket, against the same
HAProxy config in front of one granian worker serving ``bench/raw_rsgi.py``
(a fixed 302, the same headers and body, no lookup, log or visit). HAProxy
and the worker share core 0, wrk (``-t1 -c64``, random existing codes of a
store of ``--links`` plain links, all held in the worker's memory) runs on
core 1; rounds alternate. Besides requests a second, it prints the CPU time
per answer of HAProxy and the worker together — the figure a busy VM
distorts least. Target: the app at ≥ 0.8 of the raw handler.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import WrkFigures, children, cpu_seconds, free_port, run_wrk, stop
from redirect import LUA, fill_store

from edge import EDGE_CORE, WRK_CORE, pin_all, start_worker, wait_until_ready
from steadylink.edge import EdgeConfig, SlotSetting, start_edge, stop_edge
from steadylink.edge.process import EdgeProcess, read_master_status


def group_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for root in pids for pid in [root, *children(root)])


def front_door(run_dir: Path) -> tuple[EdgeConfig, EdgeProcess]:
    config = EdgeConfig(
        run_dir=run_dir, port=free_port(), slots=1, nbthread=1, edge_redirects=False,
        initial={0: SlotSetting(100, "ready")},
    )  # fmt: skip
    edge = start_edge(config, timeout=60)
    pin_all([edge.pid, *read_master_status(config).workers], EDGE_CORE)
    return config, edge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=5, help="per round and server")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sl-bench-app-front-", dir="/tmp"))
    fill_store(work / "links.db", args.links)
    script = work / "codes.lua"
    script.write_text(LUA.replace("{last}", str(args.links - 1)))
    env = {"STEADYLINK_DATA_DIR": str(work), "STEADYLINK_RELEASE_ID": "bench"}
    raw_env = {**env, "PYTHONPATH": str(Path(__file__).parent)}
    app_config, app_edge = front_door(work / "app-run")
    raw_config, raw_edge = front_door(work / "raw-run")
    app_worker = start_worker(app_config.slot_socket(0), env, work / "app.log")
    raw_worker = start_worker(raw_config.slot_socket(0), raw_env, work / "raw.log", target="raw_rsgi:app")
    figures: dict[str, list[WrkFigures]] = {"app": [], "raw": []}
    cpu: dict[str, list[float]] = {"app": [], "raw": []}
    try:
        wait_until_ready(app_config.slot_socket(0), app_worker)
        wait_until_ready(raw_config.slot_socket(0), raw_worker)
        time.sleep(3)  # HAProxy's health checks see both slots up
        sides = {
            "app": (app_config, app_edge, app_worker),
            "raw": (raw_config, raw_edge, raw_worker),
        }
        for config, _, _ in sides.values():
            run_wrk(f"http://127.0.0.1:{config.port}", script=script, seconds=2, core=WRK_CORE)  # warm-up
        for _ in range(args.rounds):
            for name, (config, _, worker) in sides.items():
                pids = [*read_master_status(config).workers, worker.pid]
                before = group_cpu(pids)
                one = run_wrk(
                    f"http://127.0.0.1:{config.port}", script=script, seconds=args.seconds, core=WRK_CORE
                )
                cpu[name].append(
                    (group_cpu(pids) - before) * 1e6 / max(one.requests_per_second * args.seconds, 1)
                )
                figures[name].append(one)
    finally:
        for worker in (app_worker, raw_worker):
            stop(worker)
        for edge in (app_edge, raw_edge):
            stop_edge(edge)
    for i in range(args.rounds):
        app, raw = figures["app"][i], figures["raw"][i]
        print(f"round {i + 1}: ratio {app.requests_per_second / raw.requests_per_second:.2f}")
        print("  " + app.line("app redirect via HAProxy"))
        print("  " + raw.line("raw granian 302 via HAProxy"))
    app_rps = statistics.median(f.requests_per_second for f in figures["app"])
    raw_rps = statistics.median(f.requests_per_second for f in figures["raw"])
    ratios = [
        a.requests_per_second / r.requests_per_second
        for a, r in zip(figures["app"], figures["raw"], strict=True)
    ]
    app_us, raw_us = statistics.median(cpu["app"]), statistics.median(cpu["raw"])
    print(
        f"median of {args.rounds} rounds: app {app_rps:,.0f} req/s, raw handler {raw_rps:,.0f} req/s; "
        f"ratio {statistics.median(ratios):.2f} (target >= 0.8)"
    )
    print(
        f"CPU per answer, HAProxy + worker (median): app {app_us:.1f} µs, raw handler {raw_us:.1f} µs; "
        f"ratio {raw_us / app_us:.2f}"
    )
    errors = {name: [f.errors for f in runs] for name, runs in figures.items()}
    print(f"errors: app {errors['app']}, raw {errors['raw']}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
