"""Release figures under a steady load: what the guard promised in issue 3, measured.

    .venv/bin/python bench/releases.py [--rate 500] [--bugs all] [--threads 12]

One run, one real ``steadylink up`` (HAProxy + worker groups + the guard) on free
loopback ports, reusing the end-to-end harness (``tests/e2e/guard_harness.py``:
a source git repository made from this checkout, one branch per seed bug, the
stack started and stopped by PID). While a paced load runs through the front
door (90 % ``GET /<code>`` with a ``Referer`` checked for 302 + the exact
``Location``, 10 % ``POST /api/v1/links`` with the operator key checked for 201)
it deploys, in order:

1. a good release (failed requests, time to promote);
2. each seed bug (the step that stopped it, failed requests, share of the
   window's requests, time from the first failed request to full restore);
3. ``steadylink rollback`` to a stopped release (cold: restarted from its kept
   directory), then a second good release and ``steadylink rollback`` during its
   bake, while the previous release is still warm (a weight change).

Then it stops the load and measures the front door's cost: ``wrk`` on redirects
through HAProxy vs straight to a TCP ``steadylink serve`` of the serving release
(same code, same worker count, same data directory). It prints a markdown table
with the anchors from the issue. Every process it starts is stopped by its PID,
also on Ctrl-C, SIGTERM or an error.

Release settings are FAST_RELEASES from the e2e tests with a canary of at least
50 requests and 2 s per step and a 10 s bake (``--bake``); the guard reads them
once, at ``up``. After a bake the previous release is stopped, so the only warm
rollback target is during a bake: the run rolls ``good-2`` back while it bakes.

Timing sources: the load generator's monotonic clock (failures and completions),
the deploy CLI's start/exit, and a watcher that reads each slot's weight from
HAProxy's runtime API every 50 ms (when the bad candidate's weight reached 0).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import run_wrk, stop  # noqa: E402
from tests.e2e.guard_harness import (  # noqa: E402
    STEADYLINK,
    GuardStack,
    commit_variant,
    free_port,
    git,
    make_source_repo,
    short_tmp,
    wait_until,
)
from tests.e2e.test_guard import FAST_RELEASES, SEED_BUGS  # noqa: E402

from steadylink.edge import EdgeConfig, read_master_status  # noqa: E402
from steadylink.edge.runtime import RuntimeClient, build_set_weight  # noqa: E402
from steadylink.release.processes import read_group  # noqa: E402
from steadylink.watch.journal import Journal  # noqa: E402

# Realistic enough at 500 req/s, short enough for one run of a few minutes.
BENCH_RELEASES = {
    **FAST_RELEASES,
    "STEADYLINK_RELEASE_CANARY_MIN_REQUESTS": "50",
    "STEADYLINK_RELEASE_CANARY_MIN_SECONDS": "2",
    "STEADYLINK_RELEASE_STAGE_SAMPLE": "200",
}
MAX_LAG = 0.25  # a pacer slot later than this is skipped (and counted), not sent in a burst
ANCHORS = [
    ("AWS Elastic Beanstalk traffic splitting", "evaluates the new version for 5 minutes by default"),
    ("Flagger (default analysis)", "rollback after ~60 s (interval 1 m x threshold)"),
    ("kamal-proxy", "never notices a release whose health check passes while its real routes fail"),
]


# --------------------------------------------------------------------------- load


@dataclass
class LoadLog:
    """What the load saw, on the monotonic clock: completions and failures."""

    done: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    skipped: int = 0

    def window(self, start: float, end: float) -> tuple[int, list[tuple[float, str]], list[float]]:
        done = sorted(zip(self.done, self.latency, strict=False))
        lo = bisect.bisect_left(done, (start, -1.0))
        hi = bisect.bisect_right(done, (end, float("inf")))
        fails = sorted(f for f in self.failures if start <= f[0] <= end)
        return hi - lo, fails, [lat for _, lat in done[lo:hi]]


class PacedLoad:
    """``rate`` req/s through the front door from several threads, every answer checked.

    The harness's ``SteadyLoad`` is one thread that sleeps between requests: on
    this 2-core machine it tops out well below 500 req/s. Here the threads share
    one open-loop schedule (slot i at t0 + i/rate); a thread late by more than
    ``MAX_LAG`` skips slots and counts them instead of bursting to catch up.
    """

    def __init__(self, base: str, key: str, links: dict[str, str], rate: float, threads: int) -> None:
        self.base, self.key, self.links, self.rate = base, key, dict(links), rate
        self.log = LoadLog()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next = 0.0
        self.redirects_ok = 0  # 302s with the right Location: each one a visit to count
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True, name=f"load-{n}")
            for n in range(threads)
        ]
        self.started = self.stopped = 0.0

    def start(self) -> PacedLoad:
        self.started = self._next = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if not self.stopped:
            self.stopped = time.monotonic()

    def _take_slot(self) -> float:
        with self._lock:
            now = time.monotonic()
            if self._next < now - MAX_LAG:
                late = int((now - self._next) * self.rate)
                self.log.skipped += late
                self._next += late / self.rate
            slot = self._next
            self._next += 1.0 / self.rate
            return slot

    def _run(self, n: int) -> None:
        rng = random.Random(1000 + n)
        codes = list(self.links)
        auth = {"Authorization": f"Bearer {self.key}"}
        referer = {"Referer": "https://news.example/a"}
        with httpx.Client(base_url=self.base, timeout=5.0) as client:
            while not self._stop.is_set():
                slot = self._take_slot()
                pause = slot - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                started = time.monotonic()
                problem = None
                try:
                    if rng.random() < 0.9:
                        code = rng.choice(codes)
                        r = client.get(f"/{code}", headers=referer)
                        if r.status_code != 302 or r.headers.get("location") != self.links[code]:
                            problem = f"GET /{code}: {r.status_code} {r.headers.get('location')}"
                    else:
                        r = client.post(
                            "/api/v1/links",
                            json={"url": f"https://load.example/{rng.random()}"},
                            headers=auth,
                        )
                        if r.status_code != 201:
                            problem = f"POST: {r.status_code} {r.text[:80]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                finished = time.monotonic()
                with self._lock:
                    if problem is None and r.status_code == 302:
                        self.redirects_ok += 1
                    self.log.done.append(finished)
                    self.log.latency.append(finished - started)
                    if problem is not None:
                        self.log.failures.append((finished, problem))


# --------------------------------------------------------------------------- watching HAProxy


class WeightWatch:
    """Reads every slot's weight from HAProxy's runtime API every 50 ms (read-only)."""

    def __init__(self, socket_path: Path) -> None:
        self.runtime = RuntimeClient(socket_path)
        self.changes: list[tuple[float, int, int]] = []  # (monotonic, slot, weight)
        self.fivexx: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="weights")

    def start(self) -> WeightWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                stats = self.runtime.server_stats()
            except Exception:  # HAProxy busy or restarting: try again next tick
                stats = {}
            now = time.monotonic()
            for slot, s in stats.items():
                if self._last.get(slot) != s.weight:
                    self.changes.append((now, slot, s.weight))
                    self._last[slot] = s.weight
                self.fivexx[slot] = s.hrsp_5xx
            self._stop.wait(0.05)

    def zeroed_after(self, slot: int, start: float) -> float | None:
        """When ``slot``'s weight was first seen at 0 at or after ``start``."""
        return next((t for t, s, w in self.changes if s == slot and t >= start and w == 0), None)

    def busiest_at(self, when: float) -> int | None:
        """The slot with the highest weight at ``when`` (replaying the changes seen)."""
        weights: dict[int, int] = {}
        for t, slot, weight in self.changes:
            if t > when:
                break
            weights[slot] = weight
        return max(weights, key=lambda n: weights[n]) if weights else None

    def first_up_after(self, slot: int, start: float) -> float | None:
        return next((t for t, s, w in self.changes if s == slot and t >= start and w > 0), None)


# --------------------------------------------------------------------------- commands


@dataclass
class Run:
    code: int
    stdout: str
    stderr_lines: list[tuple[float, str]]
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    def json(self) -> dict[str, Any]:
        try:
            body = json.loads(self.stdout)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def line_time(self, needle: str) -> float | None:
        return next((t for t, line in self.stderr_lines if needle in line), None)


class Commands:
    """Runs ``steadylink`` CLI commands against the stack; tracks the PIDs it starts."""

    def __init__(self, stack: GuardStack) -> None:
        self.stack = stack
        self.running: dict[int, subprocess.Popen[str]] = {}

    def run(self, *args: str, on_line: Callable[[str], None] | None = None, timeout: float = 900) -> Run:
        env = {**self.stack.env, "STEADYLINK_DATA_DIR": str(self.stack.data_dir), "COLUMNS": "400"}
        started = time.monotonic()
        process = subprocess.Popen(
            [*STEADYLINK, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.stack.workdir,
        )
        self.running[process.pid] = process
        lines: list[tuple[float, str]] = []
        out: list[str] = []

        def read_out() -> None:
            assert process.stdout is not None
            out.append(process.stdout.read())

        reader = threading.Thread(target=read_out, daemon=True)
        reader.start()
        assert process.stderr is not None
        try:
            for line in process.stderr:
                lines.append((time.monotonic(), line.rstrip()))
                if on_line is not None:
                    on_line(line)
            process.wait(timeout=timeout)
        finally:
            self.running.pop(process.pid, None)
        ended = time.monotonic()
        reader.join(timeout=10)
        return Run(process.returncode, "".join(out), lines, started, ended)

    def stop_all(self) -> None:
        for pid, process in list(self.running.items()):
            if process.poll() is None:
                os.kill(pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(pid, signal.SIGKILL)


def guard_state(stack: GuardStack) -> dict[str, object]:
    body: dict[str, object] = json.loads((stack.data_dir / "run" / "guard.json").read_text())
    return body


def slot_of(stack: GuardStack, release: str) -> int | None:
    slots = guard_state(stack).get("slots") or {}
    assert isinstance(slots, dict)
    return next((int(n) for n, e in slots.items() if e["release"] == release), None)


# --------------------------------------------------------------------------- figures


@dataclass
class Row:
    what: str
    caught_by: str
    outcome: str
    requests: int
    failures: list[tuple[float, str]]
    seconds: float
    restore_s: float | None = None
    note: str = ""
    p99_ms: float | None = None

    @property
    def share(self) -> str:
        return f"{len(self.failures) / self.requests:.3%}" if self.requests else "—"


def p99(values: list[float]) -> float | None:
    if len(values) < 20:
        return None
    return statistics.quantiles(values, n=100)[98] * 1000


def window_row(load: PacedLoad, what: str, run: Run, *, caught_by: str, outcome: str, note: str = "") -> Row:
    requests, fails, lat = load.log.window(run.started, run.ended)
    return Row(what, caught_by, outcome, requests, fails, run.seconds, note=note, p99_ms=p99(lat))


def fmt_s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


# --------------------------------------------------------------------------- phases


def deploy_good(cmd: Commands, load: PacedLoad, ref: str) -> Row:
    run = cmd.run("deploy", ref, "--source", str(cmd.stack.source), "--json")
    record = run.json()
    promoted_at = run.line_time("promoted ")
    note = "to promotion (100 % traffic) " + fmt_s(promoted_at - run.started if promoted_at else None)
    note += f"; then bake {BENCH_RELEASES['STEADYLINK_RELEASE_BAKE_SECONDS']} s"
    return window_row(
        load,
        f"good release (`{ref}`)",
        run,
        caught_by="—",
        outcome=f"{record.get('verdict', '?')} (exit {run.code})",
        note=note,
    )


def deploy_bug(cmd: Commands, load: PacedLoad, watch: WeightWatch, bug: tuple[object, ...]) -> Row:
    branch, expected_code, expected_step = bug[0], bug[5], bug[6]
    stable = _serving_slot(cmd)
    run = cmd.run("deploy", str(branch), "--source", str(cmd.stack.source), "--json")
    record = run.json()
    caught = str(record.get("caught_by") or "—")
    row = window_row(
        load,
        f"seed bug `{branch}`",
        run,
        caught_by=caught,
        outcome=f"{record.get('verdict', '?')} (exit {run.code})",
    )
    notes = []
    if run.code != expected_code or not caught.startswith(str(expected_step)):
        notes.append(f"EXPECTED exit {expected_code} by {expected_step}")
    candidate = next((s for t, s, w in watch.changes if t >= run.started and w > 0 and s != stable), None)
    up = watch.first_up_after(candidate, run.started) if candidate is not None else None
    zero = watch.zeroed_after(candidate, up) if candidate is not None and up is not None else None
    if candidate is not None:
        if up is not None and zero is not None:
            notes.append(f"candidate had live traffic for {zero - up:.2f} s (weight >0 → 0, 50 ms polls)")
        steps = record.get("steps") or []
        assert isinstance(steps, list)
        for step in steps:
            if str(step.get("name", "")).startswith("canary") and step.get("verdict") == "failed":
                f = step.get("figures", {})
                notes.append(
                    f"{step['name']}: {f.get('errors', '?')} 5xx in {f.get('requests', '?')} candidate "
                    f"answers, seen by HAProxy (GETs retried on the stable release)"
                )
    if row.failures:
        first, last = row.failures[0][0], row.failures[-1][0]
        row.restore_s = max(zero or last, last) - first
        if zero is not None:
            notes.append(f"first failure → weight 0: {zero - first:.2f} s")
        notes.append(f"first failure → deploy exit: {run.ended - first:.2f} s")
    row.note = "; ".join(notes)
    return row


def _serving_slot(cmd: Commands) -> int | None:
    serving = guard_state(cmd.stack).get("serving")
    return slot_of(cmd.stack, str(serving)) if serving else None


def rollback_cold(cmd: Commands, load: PacedLoad, watch: WeightWatch) -> Row:
    run = cmd.run("rollback", "--json")
    body = run.json()
    row = window_row(
        load,
        "`steadylink rollback`, target stopped (cold)",
        run,
        caught_by="—",
        outcome=f"{body.get('from')} → {body.get('serving')} (exit {run.code})",
    )
    row.restore_s = float(str(body["seconds"])) if "seconds" in body else None
    row.note = _rollback_note(row, run, body, watch)
    return row


def rollback_warm(cmd: Commands, load: PacedLoad, watch: WeightWatch, ref: str) -> tuple[Row, Row]:
    """Deploy ``ref``; as soon as it is promoted (bake running, previous warm), roll back."""
    status = cmd.run("status", "--json")
    cli_note = f"for scale: `steadylink status --json` took {status.seconds:.2f} s under the same load"
    result: dict[str, Any] = {}

    def on_line(line: str) -> None:
        if "baking with" in line and "rollback" not in result:
            result["rollback"] = cmd.run("rollback", "--json")

    # The rollback runs from the deploy's stderr reader: it blocks that reader for
    # about a second, which only delays reading the deploy's later progress lines.
    deploy = cmd.run("deploy", ref, "--source", str(cmd.stack.source), "--json", on_line=on_line)
    record = deploy.json()
    d_row = window_row(
        load,
        f"good release `{ref}` rolled back by hand during its bake",
        deploy,
        caught_by=str(record.get("caught_by") or "—"),
        outcome=f"{record.get('verdict', '?')} (exit {deploy.code})",
    )
    run = result.get("rollback")
    if run is None:
        raise RuntimeError(
            "the deploy never reached its bake:\n" + "\n".join(x for _, x in deploy.stderr_lines)
        )
    body = run.json()
    row = window_row(
        load,
        "`steadylink rollback`, target warm (bake)",
        run,
        caught_by="—",
        outcome=f"{body.get('from')} → {body.get('serving')} (exit {run.code})",
    )
    row.restore_s = float(str(body["seconds"])) if "seconds" in body else None
    row.note = _rollback_note(row, run, body, watch) + f"; {cli_note}"
    d_row.note = "the bake saw its release stopped by the manual rollback"
    return row, d_row


def _rollback_note(row: Row, run: Run, body: dict[str, Any], watch: WeightWatch) -> str:
    # guard.json's "serving" is stale during a bake, so ask HAProxy which slot had the traffic.
    bad = watch.busiest_at(run.started)
    flip = watch.zeroed_after(bad, run.started) if bad is not None else None
    notes = [
        f"CLI wall {run.seconds:.2f} s",
        f"guard-side {fmt_s(row.restore_s)} (ops API handler, incl. stopping the release rolled back from)",
        f"old slot's weight seen at 0 {fmt_s(flip - run.started if flip else None)} after the CLI started",
    ]
    return "; ".join(notes + [str(x) for x in body.get("log") or []])


def runtime_round_trip(stack: GuardStack) -> tuple[float, float]:
    """Median ms of HAProxy runtime-API ``get weight`` and of ``set weight`` to the same value."""
    runtime = RuntimeClient(stack.data_dir / "run" / "haproxy.sock")
    slot = _serving_slot_of(stack)
    backend_server = build_set_weight(slot, 0).split()[2]  # the project's own "<backend>/<server>"
    gets, sets = [], []
    for _ in range(30):
        t = time.perf_counter()
        answer = runtime.run(f"get weight {backend_server}")
        gets.append((time.perf_counter() - t) * 1000)
        current = int(answer.split()[0])
        t = time.perf_counter()
        runtime.run(f"set weight {backend_server} {current}")
        sets.append((time.perf_counter() - t) * 1000)
    return statistics.median(gets), statistics.median(sets)


def _serving_slot_of(stack: GuardStack) -> int:
    serving = guard_state(stack).get("serving")
    slot = slot_of(stack, str(serving))
    assert slot is not None
    return slot


# --------------------------------------------------------------------------- issue 9: kinds and faults

REDIRECT = "src/steadylink/web/redirect.py"
# Where the worker answers /<code>: the kinds add their fault just before it,
# for live redirects only (a Referer: staging's requests carry none).
REDIRECT_LINE = "            try:\n                answer = self.memory_redirect(code, method, request_id)\n"
VERSIONS = "src/steadylink/links/migrations/versions"
# A worker that exits every CRASH_EVERY redirects with a Referer (live traffic
# only: staging's requests carry none); memory that grows by HOARD_BYTES a
# live redirect (~135 MB/s at 450 redirects/s, the figure).
CRASH_EVERY = 500
HOARD_BYTES = 300_000

Edit = tuple[str, str | None, str]  # (path, text replaced or None for a new file, new text)


def commit_edits(repo: Path, branch: str, edits: list[Edit], message: str, *, base: str = "main") -> None:
    """A branch off ``base`` with ``edits`` applied (a new file where the old text is None)."""
    git(repo, "checkout", "-q", base)
    git(repo, "checkout", "-q", "-B", branch)
    for path, old, new in edits:
        target = repo / path
        if old is None:
            target.write_text(new)
        else:
            text = target.read_text()
            assert old in text, f"{old!r} not found in {path}"
            target.write_text(text.replace(old, new, 1))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    git(repo, "checkout", "-q", "main")


def migration_head(repo: Path) -> str:
    """The newest revision in the tree (the one no other revision follows)."""
    revisions, parents = set(), set()
    for file in (repo / VERSIONS).glob("*.py"):
        text = file.read_text()
        rev = re.search(r'^revision = "([^"]+)"', text, re.MULTILINE)
        down = re.search(r'^down_revision = "([^"]+)"', text, re.MULTILINE)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    heads = sorted(revisions - parents)
    assert len(heads) == 1, f"expected one migration head, found {heads}"
    return heads[0]


MIGRATION = '''"""bench: {what}

Revision ID: {rev}
Revises: {down}
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        {upgrade}


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        {downgrade}
'''


def migration_edit(
    repo: Path, rev: str, what: str, upgrade: str, downgrade: str, *, down: str | None = None
) -> Edit:
    body = MIGRATION.format(
        what=what, rev=rev, down=down or migration_head(repo), upgrade=upgrade, downgrade=downgrade
    )
    return (f"{VERSIONS}/{rev}_bench.py", None, body)


def before_redirect(code: str) -> str:
    """``REDIRECT_LINE`` with ``code`` inserted inside its ``try:``, before the redirect."""
    opening, rest = REDIRECT_LINE.split("\n", 1)
    return f"{opening}\n{code}{rest}"


def release_kinds(repo: Path) -> list[tuple[str, list[Edit], bool, str]]:
    """(branch, edits, should be promoted, what it is) for each kind of issue 9."""
    crash = (
        '                if headers.get("referer"):\n'
        "                    seen = gc.__dict__.setdefault('steadylink_bench_seen', [0])\n"
        "                    seen[0] += 1\n"
        f"                    if seen[0] % {CRASH_EVERY} == 0:\n"
        "                        __import__('os')._exit(3)\n"
    )
    hoard = (
        '                if headers.get("referer"):\n'
        "                    hoard = gc.__dict__.setdefault('steadylink_bench_hoard', [])\n"
        f"                    hoard.append(b'x' * {HOARD_BYTES})\n"
    )
    return [
        (
            "crash-loop",
            [(REDIRECT, REDIRECT_LINE, before_redirect(crash))],
            False,
            f"a worker exits every {CRASH_EVERY} live redirects (granian respawns it)",
        ),
        (
            "memory-growth",
            [(REDIRECT, REDIRECT_LINE, before_redirect(hoard))],
            False,
            f"{HOARD_BYTES // 1000} KB kept per live redirect (~135 MB/s at full traffic)",
        ),
        (
            "migration-additive",
            [
                migration_edit(
                    repo, "b9001", "a nullable column (additive)",
                    'batch.add_column(sa.Column("bench_note", sa.String(200), nullable=True))',
                    'batch.drop_column("bench_note")',
                )
            ],
            True,
            "adds a nullable column the current release ignores",
        ),
        (
            "migration-destructive",
            [
                migration_edit(
                    repo, "b9002", "rename links.url (destructive)",
                    'batch.alter_column("url", new_column_name="target_url", existing_type=sa.Text)',
                    'batch.alter_column("target_url", new_column_name="url", existing_type=sa.Text)',
                    down="b9001",
                )
            ],
            False,
            "renames links.url, which the current release reads",
        ),
    ]  # fmt: skip


def failed_note(record: dict[str, Any]) -> str:
    steps = record.get("steps") or []
    failed = [s for s in steps if isinstance(s, dict) and s.get("verdict") == "failed"]
    if not failed:
        return ""
    text = " ".join(str(failed[0].get("output_tail") or "").split())
    return f"{failed[0].get('name')}: {text[-220:]}"


def deploy_kind(cmd: Commands, load: PacedLoad, branch: str, should_promote: bool, what: str) -> Row:
    run = cmd.run("deploy", branch, "--source", str(cmd.stack.source), "--json")
    record = run.json()
    verdict = str(record.get("verdict", "?"))
    row = window_row(
        load,
        f"`{branch}`: {what}",
        run,
        caught_by=str(record.get("caught_by") or "—"),
        outcome=f"{verdict} (exit {run.code})",
    )
    is_promoted = verdict == "promoted"
    notes = [] if is_promoted == should_promote else [
        f"EXPECTED {'promoted' if should_promote else 'not promoted'}"
    ]
    notes.append(failed_note(record) or "")
    if row.failures:
        row.restore_s = row.failures[-1][0] - row.failures[0][0]
    row.note = "; ".join(n for n in notes if n)
    return row


def guard_said(stack: GuardStack, since_id: int) -> tuple[list[str], int]:
    """The supervisor's events after ``since_id``, and the last id seen."""
    journal = Journal.for_data_dir(stack.data_dir)
    try:
        events = journal.read(kinds=["supervisor"], after_id=since_id)
    finally:
        journal.close()
    last = max((e.id for e in events), default=since_id)
    return [f"{e.kind}: {e.message}" for e in events], last


def _serving_group(stack: GuardStack) -> tuple[int, int]:
    serving = str(guard_state(stack)["serving"])
    slots = guard_state(stack)["slots"]
    assert isinstance(slots, dict)
    n, entry = next((int(n), e) for n, e in slots.items() if e["release"] == serving)
    return n, int(entry["pid"])


def _front_answers(stack: GuardStack) -> bool:
    try:
        return httpx.get(f"{stack.front}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def run_fault(stack: GuardStack, load: PacedLoad, name: str, since_id: int) -> tuple[Row, int]:
    """Inflict one fault of issue 9 item 4 under the load; time until the guard has restored it."""
    slot, leader = _serving_group(stack)
    started = time.monotonic()
    restored: float | None = None
    if name in ("haproxy-master", "haproxy-worker"):
        config = EdgeConfig(run_dir=stack.data_dir / "run")
        master = int((stack.data_dir / "run" / "haproxy.pid").read_text().split()[0])
        pid = master if name == "haproxy-master" else read_master_status(config).workers[0]
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(0.05)
        while time.monotonic() - killed < 10 and not _front_answers(stack):
            time.sleep(0.02)
        restored = time.monotonic() - killed
        what = f"`kill -9` HAProxy's {name.split('-')[1]} (pid {pid})"
    elif name == "leader":
        os.kill(leader, signal.SIGKILL)
        killed = time.monotonic()
        while time.monotonic() - killed < 60 and _serving_group(stack)[0] == slot:
            time.sleep(0.05)
        restored = time.monotonic() - killed
        what = f"`kill -9` the serving group's leader (pid {leader})"
    else:  # stall
        worker = read_group(leader).workers[0].pid
        os.kill(worker, signal.SIGSTOP)
        killed = time.monotonic()
        time.sleep(10.0)
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGCONT)
        is_gone = not any(p.pid == worker for p in read_group(leader).processes)
        restored = None
        what = f"`kill -STOP` one worker (pid {worker}) for 10 s" + ("" if is_gone else " (never killed)")
    time.sleep(2.0)
    ended = time.monotonic()
    said, last = guard_said(stack, since_id)
    requests, fails, lat = load.log.window(started, ended)
    row = Row(what, "supervisor", "restored" if said else "NOT restored", requests, fails,
              ended - started, restore_s=restored, p99_ms=p99(lat))  # fmt: skip
    row.note = "; ".join(said) or "the guard said nothing"
    return row, last


def count_visits(stack: GuardStack, codes: list[str]) -> int:
    auth = {"Authorization": f"Bearer {stack.key}"}
    with httpx.Client(base_url=stack.front, headers=auth, timeout=10) as client:
        return sum(int(client.get(f"/api/v1/links/{c}").json()["visits"]) for c in codes)


# --------------------------------------------------------------------------- front door


LUA = """
local codes = {%s}
math.randomseed(%d)
request = function()
  return wrk.format("GET", "/" .. codes[math.random(1, #codes)])
end
"""


def wrk(url: str, script: Path, seconds: int) -> tuple[float, str]:
    figures = run_wrk(url, script=script, seconds=seconds, core=None)
    return figures.requests_per_second, f"p99 {figures.p99_ms:.2f} ms, {figures.errors}"


def front_door_cost(stack: GuardStack, links: dict[str, str], seconds: int) -> list[tuple[str, float, str]]:
    """wrk on redirects via HAProxy vs a TCP ``steadylink serve`` of the serving release."""
    state = guard_state(stack)
    serving = str(state["serving"])
    slots = state["slots"]
    assert isinstance(slots, dict)
    python = next(e["python"] for e in slots.values() if e["release"] == serving)
    workers = os.environ.get("STEADYLINK_RELEASE_WORKERS", "1")
    port = free_port()
    script = stack.workdir / "codes.lua"
    script.write_text(LUA % (", ".join(f'"{c}"' for c in links), 7))
    log = (stack.workdir / "direct.log").open("wb")
    direct = subprocess.Popen(
        [
            python,
            "-m",
            "steadylink",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(stack.data_dir),
            "--workers",
            workers,
        ],
        env={**stack.env, "STEADYLINK_DATA_DIR": str(stack.data_dir)},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=stack.workdir,
        start_new_session=True,
    )
    results: list[tuple[str, float, str]] = []
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz", direct), 90, "the direct server")
        code = next(iter(links))
        for base in (stack.front, f"http://127.0.0.1:{port}"):
            r = httpx.get(f"{base}/{code}")
            assert r.status_code == 302 and r.headers["location"] == links[code], (base, r.status_code)
        for round_ in (1, 2):
            for name, url in (
                ("via HAProxy (front door)", stack.front),
                ("direct to the app (TCP serve)", f"http://127.0.0.1:{port}"),
            ):
                rps, extra = wrk(url + "/", script, seconds)
                results.append((f"{name}, round {round_}", rps, extra))
    finally:
        stop(direct, timeout=15)
    return results


def _answers(url: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the direct server exited with {process.returncode}")
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# --------------------------------------------------------------------------- report


def print_table(
    rows: list[Row],
    load: PacedLoad,
    rate: float,
    threads: int,
    trip: tuple[float, float],
    front: list[tuple[str, float, str]],
    loads: tuple[tuple[float, ...], tuple[float, ...]],
) -> None:
    seconds = load.stopped - load.started
    total = len(load.log.done)
    print()
    print(f"## steadylink release figures ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores)")
    print()
    print(
        f"Load: target {rate:g} req/s from {threads} threads (90 % GET + Referer, 10 % POST), "
        f"achieved {total / seconds:.0f} req/s over {seconds:.0f} s ({total} requests, "
        f"{load.log.skipped} pacer slots skipped as > {MAX_LAG:g} s late, "
        f"{len(load.log.failures)} failed in all)."
    )
    print(
        f"Load average at start {loads[0][0]:.2f} / {loads[0][1]:.2f} / {loads[0][2]:.2f}, "
        f"at end {loads[1][0]:.2f} / {loads[1][1]:.2f} / {loads[1][2]:.2f} (1/5/15 min); "
        "builds, gates and staging ran on the same 2 cores as the load, HAProxy and the workers."
    )
    print()
    print(
        "| release / action | stopped by | outcome | requests in window | failed | share | "
        "first failure → restored (or rollback time) | window | achieved rate | load p99 | notes |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "rollback" in r.what:
            restore = f"rollback: guard {fmt_s(r.restore_s)}, CLI {r.seconds:.2f} s"
        else:
            restore = fmt_s(r.restore_s) if r.failures else "— (none failed)"
        rate_s = f"{r.requests / r.seconds:.0f} req/s" if r.seconds else "—"
        lat = fmt_s(r.p99_ms / 1000) if r.p99_ms else "—"
        print(
            f"| {r.what} | {r.caught_by} | {r.outcome} | {r.requests} | {len(r.failures)} | {r.share} | "
            f"{restore} | {r.seconds:.1f} s | {rate_s} | {lat} | {r.note} |"
        )
    print()
    print(
        f"HAProxy runtime API round trip (the weight change a warm rollback is made of): "
        f"`get weight` {trip[0]:.2f} ms, `set weight` (to its current value) {trip[1]:.2f} ms, median of 30."
    )
    print()
    print("Front door cost — wrk -t1 -c64 on random seeded codes (302s, no Referer), load stopped, unpinned:")
    print()
    print("| target | req/s | notes |")
    print("|---|---:|---|")
    for name, rps, extra in front:
        print(f"| {name} | {rps:,.0f} | {extra} |")
    print()
    print("Anchors (issue 3):")
    print()
    print("| system | behaviour |")
    print("|---|---|")
    for name, what in ANCHORS:
        print(f"| {name} | {what} |")
    failures = [f for r in rows for f in r.failures]
    if failures:
        print()
        print("Failed requests seen by the load (first 10):")
        for t, message in failures[:10]:
            print(f"- +{t - load.started:.2f} s {message}")


# --------------------------------------------------------------------------- main


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


FAULTS = ("haproxy-master", "haproxy-worker", "leader", "stall")
KINDS = ("crash-loop", "memory-growth", "migration-additive", "migration-destructive")


def _pick(value: str, known: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    if value == "all":
        return list(known)
    if value == "none":
        return []
    picked = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(picked) - set(known))
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; known: {', '.join(known)}")
    return picked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second [500]")
    parser.add_argument("--threads", type=int, default=12, help="load threads [12]")
    parser.add_argument("--bugs", default="all", help="comma-separated seed bugs, all or none")
    parser.add_argument(
        "--kinds", default="all", help="issue 9 release kinds (crash-loop, memory-growth, "
        "migration-additive, migration-destructive), all or none",
    )  # fmt: skip
    parser.add_argument(
        "--faults", default="all",
        help=f"issue 9 faults ({', '.join(FAULTS)}), all or none",
    )  # fmt: skip
    parser.add_argument("--no-rollbacks", action="store_true", help="skip the rollback phases")
    parser.add_argument("--links", type=int, default=200, help="links to seed [200]")
    parser.add_argument("--bake", type=float, default=10.0, help="bake seconds [10]")
    parser.add_argument("--wrk-seconds", type=int, default=5, help="seconds per wrk run [5]")
    args = parser.parse_args(argv)
    names = [b[0] for b in SEED_BUGS]
    wanted = names if args.bugs == "all" else [b.strip() for b in args.bugs.split(",") if b.strip()]
    wanted = [] if args.bugs == "none" else wanted
    faults = _pick(args.faults, FAULTS, parser)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        parser.error(f"unknown seed bug(s) {', '.join(unknown)}; known: {', '.join(names)}")
    bugs = [b for b in SEED_BUGS if b[0] in wanted]
    BENCH_RELEASES["STEADYLINK_RELEASE_BAKE_SECONDS"] = f"{args.bake:g}"

    load_start = os.getloadavg()
    print(f"load average at start: {load_start}", flush=True)
    workdir = short_tmp()
    stack: GuardStack | None = None
    cmd: Commands | None = None
    load: PacedLoad | None = None
    watch: WeightWatch | None = None
    with terminate_as_interrupt():
        try:
            source = make_source_repo(workdir)
            for branch, path, old, new, message, _, _ in bugs:
                commit_variant(source, branch, path, old, new, f"v2: {message}")
            every_kind = release_kinds(source)
            for branch, edits, _, what in every_kind:
                # the contract follows its expand, as a real one would: the destructive
                # release carries the additive migration too (promoted or not before it)
                base = "migration-additive" if branch == "migration-destructive" else "main"
                commit_edits(source, branch, edits, f"v2: {what}", base=base)
            kinds = [k for k in every_kind if k[0] in _pick(args.kinds, KINDS, parser)]
            for ref in ("good", "good-2"):
                commit_variant(
                    source,
                    ref,
                    "README.md",
                    "# steadylink",
                    f"# steadylink\n<!-- {ref} -->\n",
                    f"v2: a good change ({ref})",
                )
            stack = GuardStack(workdir, source, BENCH_RELEASES)
            print(f"starting steadylink up in {workdir} (front {stack.front})", flush=True)
            stack.start()
            cmd = Commands(stack)
            links = stack.seed_links(args.links)
            watch = WeightWatch(stack.data_dir / "run" / "haproxy.sock").start()
            load = PacedLoad(stack.front, stack.key, links, args.rate, args.threads).start()
            time.sleep(3)  # warm up: connections open, pacer steady
            rows: list[Row] = []
            print("deploying good …", flush=True)
            rows.append(deploy_good(cmd, load, "good"))
            for bug in bugs:
                print(f"deploying {bug[0]} …", flush=True)
                rows.append(deploy_bug(cmd, load, watch, bug))
            for branch, _, should_promote, what in kinds:
                print(f"deploying {branch} …", flush=True)
                rows.append(deploy_kind(cmd, load, branch, should_promote, what))
            since = 0
            for fault in faults:
                print(f"fault {fault} …", flush=True)
                row, since = run_fault(stack, load, fault, since)
                rows.append(row)
            if not args.no_rollbacks:
                print("rollback (cold) …", flush=True)
                rows.append(rollback_cold(cmd, load, watch))
                print("deploying good-2 and rolling back during its bake (warm) …", flush=True)
                warm, deploy_row = rollback_warm(cmd, load, watch, "good-2")
                rows += [deploy_row, warm]
            time.sleep(2)
            load.stop()
            time.sleep(4)  # the last visits: a worker's flush (1 s) and a fold (1 s)
            counted = count_visits(stack, list(links))
            print(
                f"visits: {counted} counted on the seeded links, {load.redirects_ok} redirects the load "
                f"got: {counted - load.redirects_ok:+d} (canary synthetic requests count as bot "
                "visits; below zero would be visits lost)",
                flush=True,
            )
            trip = runtime_round_trip(stack)
            print("front door: wrk …", flush=True)
            front = front_door_cost(stack, links, args.wrk_seconds)
            print_table(rows, load, args.rate, args.threads, trip, front, (load_start, os.getloadavg()))
            return 0
        finally:
            if load is not None:
                load.stop()
            if watch is not None:
                watch.stop()
            if cmd is not None:
                cmd.stop_all()
            if stack is not None:
                stack.stop()
            print(f"load average at end: {os.getloadavg()}; work dir {workdir}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
