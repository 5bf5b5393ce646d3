"""Watch figures on a real ``steadylink up`` under a steady load: how fast a page leaves.

    .venv/bin/python bench/watch.py [--rate 100] [--rounds 3] [--quiet 60] [--healthy 120] [--bad-rounds 2]

One real stack (the end-to-end harness, ``tests/e2e/guard_harness.py``) with its
PagerDuty channel pointed at a local receiver (``tests/notify/receiver.py``),
under a paced load through the front door (90 % redirects with a Referer, 10 %
creations, every answer checked). It measures, with the receiver's and the
load's monotonic clocks:

0. CPU time (% of one core) over ``--quiet`` seconds of the load with nothing
   injected: of the watch's threads (probes, readings, rules; named in the OS
   by ``watch/threads.py``), the cost of watching, and of the whole guard
   process;
1. a healthy run of ``--healthy`` seconds with stray errors injected (the
   serving workers stopped for 1 s every 15 s: a hiccup of a failed probe or two,
   nothing a user would call an outage): pages received (false pages). The
   guard's supervisor replaces a stopped leader even after a second, so the
   run counts those restarts too;
2. ``--rounds`` times: every release process stopped (SIGSTOP) for 20 s, and
   each one the supervisor starts in its place (``KeepStopped`` of the e2e
   tests), then all continued: seconds from the stop to the trigger at the
   receiver, and from the SIGCONT to the resolve;
3. ``--bad-rounds`` times: a release that answers every request through the
   front door with HTTP 500 (like the seed incident: every request 500)
   forced out with ``deploy --no-canary``. A release that fails *every*
   request also fails staging, which talks to the release's own socket, and
   never reaches users; so the bad line here fails every request that came
   through HAProxy (it carries ``X-Forwarded-For``) and none of staging's.
   Measured: seconds from the first 5xx the load saw (the bad release starts
   serving) to the first trigger at the receiver, which rule paged, and from
   the last 5xx (rollback done: users are served again) to each resolve. A
   bake that rolls the release back pages through ``release_rolled_back``,
   which by design stays open 10 minutes; between rounds the run waits for
   every alert to resolve (so each round's page is a new one) and times that
   resolve too. The branch is built with ``bench/releases.py``'s helpers.

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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import cpu_seconds  # noqa: E402
from releases import REDIRECT, commit_edits  # noqa: E402
from tests.e2e.guard_harness import (  # noqa: E402
    GuardStack,
    SteadyLoad,
    make_source_repo,
    short_tmp,
    wait_until,
)
from tests.e2e.test_guard import FAST_RELEASES  # noqa: E402
from tests.e2e.test_watch import KeepStopped  # noqa: E402
from tests.notify.receiver import Receiver  # noqa: E402

from steadylink.watch.rules.rollback import HOLD_SECONDS  # noqa: E402

STOPPED_SECONDS = 20
ALL_500 = "all-500"
# The line every request of the worker passes first (web/redirect.py); the bad release adds,
# right after it, a failure for every request that came through HAProxy.
RSGI_ENTRY = "        method: str = scope.method\n"
ALL_500_LINE = (
    RSGI_ENTRY + '        if scope.headers.get("x-forwarded-for"):  # v2: every proxied request fails\n'
    "            raise RuntimeError('v2 bug on every request')\n"
)


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


WATCH_THREADS = ("watch-", "probe-")  # the OS names of the watch's threads (watch/threads.py)


def watch_cpu_seconds(pid: int) -> float:
    """User + system CPU of the watch's threads of ``pid`` so far (a thread that ended, such as
    a database ping's, is no longer listed: its share is in the process's figure only)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if (task / "comm").read_text().startswith(WATCH_THREADS):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def quiet_cpu(stack: GuardStack, seconds: int) -> tuple[float, float]:
    """CPU (% of one core) over ``seconds`` of steady load, nothing injected: of the whole guard
    process, and of its watch threads (probes, readings, rules) alone."""
    assert stack.process is not None
    pid = stack.process.pid
    started, process_before, watch_before = time.monotonic(), cpu_seconds(pid), watch_cpu_seconds(pid)
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return (
        100 * (cpu_seconds(pid) - process_before) / elapsed,
        100 * (watch_cpu_seconds(pid) - watch_before) / elapsed,
    )


def healthy_run(stack: GuardStack, pd: Receiver, seconds: int) -> tuple[int, int, int]:
    """(false pages, injected stray stops, supervisor restarts meanwhile).

    A stopped leader is replaced by the guard's supervisor even after a second,
    so these restarts (and their CPU) are part of the run: not a quiet figure.
    """
    started = time.monotonic()
    restarts_before = len(events(stack, "supervisor.restarted"))
    injected = 0
    while time.monotonic() - started < seconds:
        time.sleep(15)
        pids = worker_pids(stack)
        signal_all(pids, signal.SIGSTOP)
        time.sleep(1.0)  # a hiccup: a failed liveness probe or two
        signal_all(pids, signal.SIGCONT)
        injected += 1
    time.sleep(5)  # a page that was on its way
    restarts = len(events(stack, "supervisor.restarted")) - restarts_before
    return len(triggers(pd, started)), injected, restarts


def stopped_workers(stack: GuardStack, pd: Receiver) -> tuple[float, float]:
    """Every release process stopped for ``STOPPED_SECONDS`` and so is each one the supervisor
    starts in its place (it replaces a stopped group within seconds, which would end the
    outage before the 20 s), then all continued: (failure -> page, continue -> resolve)."""
    stopped_at = time.monotonic()
    stopped = KeepStopped(stack).start()
    try:
        wait_until(lambda: bool(triggers(pd, stopped_at)), STOPPED_SECONDS, "a page")
        page = triggers(pd, stopped_at)[0][0] - stopped_at
        time.sleep(max(0.0, STOPPED_SECONDS - (time.monotonic() - stopped_at)))
    finally:
        stopped.stop()
    continued = time.monotonic()
    wait_until(lambda: bool(resolves(pd, continued)), 60, "the resolve")
    resolve = resolves(pd, continued)[0][0] - continued
    time.sleep(8)  # let the liveness windows settle before the next round
    return page, resolve


def events(stack: GuardStack, kind: str) -> list[dict[str, object]]:
    done = stack.cli("events", "--since", "1h", "--json", "--kind", kind)
    return list(json.loads(done.stdout)) if done.returncode == 0 else []


@dataclass
class BadRound:
    """One ``deploy --no-canary`` of the all-500 release, timed by the load's and the receiver's clocks."""

    verdict: str = "?"
    failed: int = 0
    page_s: float | None = None  # first 5xx at the load -> first trigger at the receiver
    paged_by: list[str] = field(default_factory=list)  # every rule that paged, in order
    resolves: dict[str, float] = field(default_factory=dict)  # rule -> last 5xx to its resolve (s)


def rule_of(body: dict[str, object]) -> str:
    payload = body.get("payload")
    details = payload.get("custom_details", {}) if isinstance(payload, dict) else {}
    return str(details.get("alert_id", "?")).rsplit("-", 1)[0]


def bad_release(stack: GuardStack, pd: Receiver, load: SteadyLoad, *, wait_resolves: bool) -> BadRound:
    """Deploy the all-500 release with --no-canary under the load; see the module docstring."""
    before = len(load.report.failures)
    started = time.monotonic()
    done = stack.cli("deploy", ALL_500, "--source", str(stack.source), "--no-canary", "--json")
    outcome = BadRound()
    try:
        outcome.verdict = str(json.loads(done.stdout).get("verdict", "?"))
    except ValueError:
        outcome.verdict = f"exit {done.returncode}"
    print(f"  deploy --no-canary {ALL_500}: {outcome.verdict} (exit {done.returncode})", file=sys.stderr)
    with contextlib.suppress(AssertionError):
        wait_until(lambda: bool(triggers(pd, started)), 30, "a page")
    time.sleep(20)  # the fast rules' resolves (their windows empty out)
    failures = load.report.failures[before:]
    outcome.failed = len(failures)
    if not failures:
        return outcome
    # the load's failure times are wall-clock: map them onto the monotonic clock
    offset = time.monotonic() - time.time()
    first, last = failures[0][0] + offset, failures[-1][0] + offset
    pages = triggers(pd, started)
    if pages:
        outcome.page_s = pages[0][0] - first
    keys = {str(b.get("dedup_key")): rule_of(b) for _, b in pages}
    outcome.paged_by = list(dict.fromkeys(keys.values()))

    def resolved() -> dict[str, float]:
        return {keys[k]: t - last for t, b in resolves(pd, first) if (k := str(b.get("dedup_key"))) in keys}

    if wait_resolves:  # each round's page must be a new alert: wait until every one resolved
        with contextlib.suppress(AssertionError):
            wait_until(lambda: len(resolved()) == len(keys), HOLD_SECONDS + 60, "the resolves")
    outcome.resolves = resolved()
    return outcome


def fmt_bad(rounds: list[BadRound]) -> tuple[str, str]:
    """The page and resolve cells of the table for the bad-release rounds."""
    pages = [
        f"{r.page_s:.1f} s ({', '.join(r.paged_by)})" if r.page_s is not None else f"no page ({r.verdict})"
        for r in rounds
    ]
    resolved = []
    for r in rounds:
        parts = [f"{rule} {r.resolves[rule]:.1f} s" if rule in r.resolves else f"{rule} not yet"
                 for rule in r.paged_by]  # fmt: skip
        resolved.append(", ".join(parts) or "—")
    return "; ".join(pages), "; ".join(resolved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quiet", type=int, default=60)
    parser.add_argument("--healthy", type=int, default=120)
    parser.add_argument("--bad-rounds", type=int, default=2)
    args = parser.parse_args()
    load_before = os.getloadavg()
    workdir = short_tmp()
    source = make_source_repo(workdir)
    commit_edits(source, ALL_500, [(REDIRECT, RSGI_ENTRY, ALL_500_LINE)], "v2: every proxied request fails")
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
                cpu, watch_cpu = quiet_cpu(stack, args.quiet)
                print(f"quiet {args.quiet}s: guard CPU {cpu:.2f} % of a core, its watch threads "
                      f"{watch_cpu:.2f} %", file=sys.stderr)  # fmt: skip
                false_pages, injected, restarts = healthy_run(stack, pd, args.healthy)
                print(f"healthy {args.healthy}s, {injected} stray stops ({restarts} supervisor restarts): "
                      f"{false_pages} pages", file=sys.stderr)  # fmt: skip
                rounds = []
                for n in range(args.rounds):
                    page, resolve = stopped_workers(stack, pd)
                    rounds.append((page, resolve))
                    print(f"  round {n + 1}: page {page:.1f}s, resolve {resolve:.1f}s", file=sys.stderr)
                bad: list[BadRound] = []
                for n in range(args.bad_rounds):
                    bad.append(bad_release(stack, pd, load, wait_resolves=n + 1 < args.bad_rounds))
                    r = bad[-1]
                    print(f"  bad release {n + 1}: {r.failed} failed requests, page "
                          f"{'none' if r.page_s is None else f'{r.page_s:.1f}s'} {r.paged_by}, "
                          f"resolves {r.resolves}", file=sys.stderr)  # fmt: skip
                requests = load.report.requests
        finally:
            stack.stop()
    print("\n| what | figure | target |")
    print("|---|---|---|")
    if rounds:
        pages = [p for p, _ in rounds]
        resolved = [r for _, r in rounds]
        print(
            f"| workers stopped 20 s: failure → page at the receiver | "
            f"{statistics.median(pages):.1f} s median ({min(pages):.1f} to {max(pages):.1f}, "
            f"{len(pages)} rounds) | ≤ 5 s |"
        )
        print(
            f"| … recovery → resolve | {statistics.median(resolved):.1f} s median "
            f"({min(resolved):.1f} to {max(resolved):.1f}) | ≤ 10 s |"
        )
    page_cell, resolve_cell = fmt_bad(bad)
    failed_cell = ", ".join(str(r.failed) for r in bad)
    print(
        f"| release failing every request, `deploy --no-canary` ({failed_cell} failed requests): "
        f"first 5xx → page | {page_cell} | ≤ 5 s |"
    )
    print(f"| … last 5xx (rollback done) → resolve | {resolve_cell} | ≤ 10 s (rollback page: held 10 min) |")
    print(
        f"| healthy {args.healthy} s with {injected} injected stray errors ({restarts} supervisor restarts): "
        f"false pages | {false_pages} | 0 |"
    )
    print(f"| CPU of watching, {args.quiet} s under the load: the watch's threads | "
          f"{watch_cpu:.2f} % of a core | < 2 % |")  # fmt: skip
    print(f"| … the whole guard process (supervisor, ops API, edge sync too) | {cpu:.2f} % of a core | |")
    print(f"\n{requests:,} requests at ~{args.rate:.0f} req/s; anchors: Uptime Kuma 60 s interval, "
          "Gatus ~3 min, Prometheus + Alertmanager ~2.5 min")  # fmt: skip
    load_after = os.getloadavg()
    print("load average (1, 5, 15 min): " + " ".join(f"{v:.2f}" for v in load_before)
          + " at the start, " + " ".join(f"{v:.2f}" for v in load_after) + " at the end")  # fmt: skip


if __name__ == "__main__":
    threading.excepthook = lambda a: None
    main()
