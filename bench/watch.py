"""Watch figures on a real ``steadylink up`` under a steady load: how fast a page leaves.

    .venv/bin/python bench/watch.py [--rate 100] [--rounds 3] [--healthy 120]

One real stack (the end-to-end harness, ``tests/e2e/guard_harness.py``) with its
PagerDuty channel pointed at a local receiver (``tests/notify/receiver.py``),
under a paced load through the front door (90 % redirects with a Referer, 10 %
creations, every answer checked). It measures, with the receiver's and the
load's monotonic clocks:

1. a healthy run of ``--healthy`` seconds with stray errors injected (the
   serving workers stopped for 1 s every 15 s: a hiccup of a failed probe or two,
   nothing a user would call an outage): pages received (false pages),
   and the guard process's CPU time over the run (% of one core);
2. ``--rounds`` times: the serving release's workers stopped (SIGSTOP) for 20 s,
   then continued: seconds from the stop to the trigger at the receiver, and
   from the SIGCONT to the resolve;
3. a bad release forced out with ``deploy --no-canary`` (the seed bug that fails
   a third of the redirects that carry a Referer, never in staging): seconds
   from the first failed request the load saw to the trigger, and from the last
   failed request to the resolve.

Anchors from the issue: Uptime Kuma checks every 60 s by default; Gatus takes
about 3 minutes; Prometheus + Alertmanager with default timings about 2.5
minutes before a page leaves. Every process is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import cpu_seconds  # noqa: E402
from tests.e2e.guard_harness import (  # noqa: E402
    GuardStack,
    SteadyLoad,
    commit_variant,
    make_source_repo,
    short_tmp,
    wait_until,
)
from tests.e2e.test_guard import FAST_RELEASES, SEED_BUGS  # noqa: E402
from tests.notify.receiver import Receiver  # noqa: E402

STOPPED_SECONDS = 20


def worker_pids(stack: GuardStack) -> list[int]:
    body = json.loads(stack.cli("status", "--json").stdout)
    leader = next(s["pid"] for s in body["slots"] if s["release"] == body["serving"])
    children = subprocess.run(["pgrep", "-P", str(leader)], capture_output=True, text=True).stdout.split()
    return [leader, *map(int, children)]


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    """The guard's supervisor may replace a group that stopped answering: its pids may be gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def triggers(pd: Receiver, since: float) -> list[tuple[float, dict[str, object]]]:
    return [(t, b) for t, _, b in pd.bodies if t >= since and b.get("event_action") == "trigger"]


def resolves(pd: Receiver, since: float) -> list[tuple[float, dict[str, object]]]:
    return [(t, b) for t, _, b in pd.bodies if t >= since and b.get("event_action") == "resolve"]


def healthy_run(stack: GuardStack, pd: Receiver, seconds: int) -> tuple[int, float, int]:
    """(false pages, guard CPU % of a core, injected stray stops)."""
    assert stack.process is not None
    started = time.monotonic()
    cpu_before = cpu_seconds(stack.process.pid)
    injected = 0
    while time.monotonic() - started < seconds:
        time.sleep(15)
        pids = worker_pids(stack)
        signal_all(pids, signal.SIGSTOP)
        time.sleep(1.0)  # a hiccup: a failed liveness probe or two
        signal_all(pids, signal.SIGCONT)
        injected += 1
    time.sleep(5)  # a page that was on its way
    cpu = cpu_seconds(stack.process.pid) - cpu_before
    return len(triggers(pd, started)), 100 * cpu / (time.monotonic() - started), injected


def stopped_workers(stack: GuardStack, pd: Receiver) -> tuple[float, float]:
    pids = worker_pids(stack)
    stopped_at = time.monotonic()
    signal_all(pids, signal.SIGSTOP)
    try:
        wait_until(lambda: bool(triggers(pd, stopped_at)), STOPPED_SECONDS, "a page")
        page = triggers(pd, stopped_at)[0][0] - stopped_at
        time.sleep(max(0.0, STOPPED_SECONDS - (time.monotonic() - stopped_at)))
    finally:
        signal_all(pids, signal.SIGCONT)
    continued = time.monotonic()
    wait_until(lambda: bool(resolves(pd, continued)), 60, "the resolve")
    resolve = resolves(pd, continued)[0][0] - continued
    time.sleep(8)  # let the liveness windows settle before the next round
    return page, resolve


def bad_release(stack: GuardStack, pd: Receiver, load: SteadyLoad) -> tuple[float | None, float | None, int]:
    """Deploy the referer-crash seed with --no-canary; (page s, resolve s, failed requests)."""
    before = len(load.report.failures)
    started = time.monotonic()
    done = stack.cli("deploy", "referer-crash", "--source", str(stack.source), "--no-canary", "--json")
    print(f"  deploy --no-canary referer-crash: exit {done.returncode}", file=sys.stderr)
    time.sleep(20)
    failures = load.report.failures[before:]
    if not failures:
        return None, None, 0
    # the load's failure times are wall-clock: map them onto the monotonic clock
    offset = time.monotonic() - time.time()
    first, last = failures[0][0] + offset, failures[-1][0] + offset
    page = next((t - first for t, _ in triggers(pd, started)), None)
    resolve = next((t - last for t, _ in resolves(pd, first)), None)
    return page, resolve, len(failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--healthy", type=int, default=120)
    args = parser.parse_args()
    workdir = short_tmp()
    source = make_source_repo(workdir)
    bug = next(b for b in SEED_BUGS if b[0] == "referer-crash")
    commit_variant(source, bug[0], bug[1], bug[2], bug[3], f"v2: {bug[4]}")
    with Receiver() as pd:
        env = {
            **FAST_RELEASES,
            "STEADYLINK_RELEASE_BAKE_SECONDS": "30",
            "STEADYLINK_RELEASE_WORKERS": "1",
            "STEADYLINK_NOTIFY_PAGERDUTY_ROUTING_KEY": "B3NCHK3Y000000000000000000000000",
            "STEADYLINK_NOTIFY_PAGERDUTY_EVENTS_URL": f"{pd.url}/v2/enqueue",
        }
        stack = GuardStack(workdir, source, env)
        stack.start()
        try:
            links = stack.seed_links(100)
            with SteadyLoad(stack.front, stack.key, links, rate=args.rate) as load:
                time.sleep(10)
                false_pages, cpu, injected = healthy_run(stack, pd, args.healthy)
                print(f"healthy {args.healthy}s, {injected} stray stops: {false_pages} pages, "
                      f"guard CPU {cpu:.2f} % of a core", file=sys.stderr)  # fmt: skip
                rounds = []
                for n in range(args.rounds):
                    page, resolve = stopped_workers(stack, pd)
                    rounds.append((page, resolve))
                    print(f"  round {n + 1}: page {page:.1f}s, resolve {resolve:.1f}s", file=sys.stderr)
                bad = bad_release(stack, pd, load)
                requests = load.report.requests
        finally:
            stack.stop()
    pages = [p for p, _ in rounds]
    resolved = [r for _, r in rounds]
    print("\n| what | figure | target |")
    print("|---|---|---|")
    print(
        f"| workers stopped 20 s: failure → page at the receiver | "
        f"{statistics.median(pages):.1f} s median ({min(pages):.1f} to {max(pages):.1f}, "
        f"{len(pages)} rounds) | ≤ 5 s |"
    )
    print(
        f"| … recovery → resolve | {statistics.median(resolved):.1f} s median "
        f"({min(resolved):.1f} to {max(resolved):.1f}) | ≤ 10 s |"
    )
    page_bad, resolve_bad, failed_bad = bad
    print(
        f"| bad release (`deploy --no-canary`, {failed_bad} failed requests): first failure → page | "
        f"{'no page' if page_bad is None else f'{page_bad:.1f} s'} | ≤ 5 s |"
    )
    print(f"| … last failure → resolve | {'—' if resolve_bad is None else f'{resolve_bad:.1f} s'} | ≤ 10 s |")
    print(
        f"| healthy {args.healthy} s with {injected} injected stray errors: false pages | {false_pages} | 0 |"
    )
    print(f"| guard CPU while watching (whole guard process) | {cpu:.2f} % of a core | < 2 % |")
    print(f"\n{requests:,} requests at ~{args.rate:.0f} req/s; anchors: Uptime Kuma 60 s interval, "
          "Gatus ~3 min, Prometheus + Alertmanager ~2.5 min")  # fmt: skip


if __name__ == "__main__":
    threading.excepthook = lambda a: None
    main()
