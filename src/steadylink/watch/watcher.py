"""The loops that feed probes, readings and rules (the decisions: ``rules/``, ``alerts.py``).

Threads of its own, none on the ops API's event loop and none in the request
path:

* one per probe kind (``redirect`` every second, ``create`` and ``ui`` every
  10 s), on a fixed schedule so a slow probe never shifts the next one; during
  a rollout each also probes the canary's own socket (``redirect@canary`` …);
* ``watch-readings``: once a second reads HAProxy's frontend counters (the
  request-based signal, ``traffic.py``), the disk, the database (a ping with a
  timeout, on its own thread), the backup age, the latest backup attempt (from the
  journal) and the ops loop's lag;
* ``watch-rules``: evaluates every rule right after each production probe result and
  at least once a second, steps the alert book, records each change (journal,
  ``ops.db``) and hands it to notify. It never waits on a reading, so a slow
  database ping cannot delay a page;
* ``watch-heartbeat``: the dead man's switch, a GET of ``heartbeat_url``.

Nothing here raises into the guard: a failing part is said once in the journal
and the rest goes on.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from steadylink.clock import Clock, SystemClock
from steadylink.edge.figures import ServerStats
from steadylink.notify.base import Notice
from steadylink.notify.dispatch import Dispatcher
from steadylink.settings import Settings
from steadylink.watch.alert_store import AlertStore
from steadylink.watch.alerts import Alert, AlertBook, Change, Timing
from steadylink.watch.backups import BackupState, read_backup_state
from steadylink.watch.checks import DatabasePing, LoopLag, Readings, read_backup_age, read_disk_used_percent
from steadylink.watch.journal import Event, Journal
from steadylink.watch.probes import Probe, ProbeIdentity, ProbeResult, Target, build_probes
from steadylink.watch.rules import Observations, ProbeStreak, RollbackSeen, Rule, Verdict, build_rules
from steadylink.watch.rules.base import STREAK_KEPT
from steadylink.watch.samples import Samples
from steadylink.watch.series import Series
from steadylink.watch.slo import Objective, month_budget, start_of_year, year_budget
from steadylink.watch.threads import start_named
from steadylink.watch.traffic import FrontCounters, counted_between

LIVENESS = "redirect"
JUMP_SECONDS = 5.0
# The rules run at least once a second; a longer gap means the guard itself did not run.
PAUSED_SECONDS = 5.0
SPENT_CACHE_SECONDS = 5.0


@dataclass
class Sources:
    """What the watcher reads from the guard, as plain callables (tests pass fakes)."""

    server_stats: Callable[[], dict[int, ServerStats]] = dict
    front_counters: Callable[[], FrontCounters | None] = lambda: None
    canary_sockets: Callable[[], list[Path]] = list
    ping_database: Callable[[], None] = lambda: None
    serving: Callable[[], str | None] = lambda: None
    slot_releases: Callable[[], dict[int, str]] = dict


@dataclass
class ProbeState:
    last: ProbeResult | None = None
    failing_since: float | None = None
    latencies: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=600))
    ok_total: int = 0
    failed_total: int = 0
    failed_runs: int = 0  # failed results in a row, 0 after a good one
    failed_at: deque[int] = field(default_factory=lambda: deque(maxlen=STREAK_KEPT))  # their seconds
    last_at: float = 0.0


class Watcher:
    def __init__(
        self,
        settings: Settings,
        *,
        journal: Journal,
        identity: ProbeIdentity,
        sources: Sources,
        dispatcher: Dispatcher,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.sources = sources
        self.dispatcher = dispatcher
        self.clock = clock or SystemClock()
        self.objective = Objective.of(settings.slo)
        self.data_dir = settings.data_dir.resolve()
        self.samples = Samples(
            journal.path, traffic_seconds_kept=settings.incidents.traffic_retention_days * 86_400
        )
        self.alert_store = AlertStore(journal.path)
        self.rules: dict[str, Rule] = {r.name: r for r in build_rules(settings)}
        self.book = AlertBook(
            Timing(settings.watch.renotify_seconds, settings.notify.escalate_after_seconds),
            self.alert_store.open_alerts(),
            self.alert_store.silences(),
        )
        self.liveness = Series()
        self.traffic = Series()
        now_s = self._now_s()
        self.samples.load_probe(LIVENESS, self.liveness, now_s)
        self.samples.load_traffic(self.traffic, now_s)
        self.probes: list[Probe] = build_probes(settings, identity)
        self.front = Target(f"http://{settings.host}:{settings.port}")
        self.status_url = f"http://{settings.host}:{settings.ops_port}/ops/v1/status"
        self.probe_states: dict[str, ProbeState] = {}
        self.loop_lag = LoopLag()
        self.readings = Readings()
        self.rollbacks: deque[RollbackSeen] = deque(maxlen=50)
        self.last_verdicts: dict[str, Verdict] = {}
        self._db = DatabasePing(sources.ping_database, timeout=settings.watch.database_timeout_seconds)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._probed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_probe_mono = self.clock.monotonic()
        self._last_evaluated_mono: float | None = None
        self._front_before: FrontCounters | None = None
        self._pending_traffic: tuple[int, int, int] | None = None
        self._spent_cache: tuple[float, tuple[int, int, tuple[int, int], tuple[int, int]]] | None = None
        self.slot_stats: dict[int, ServerStats] = {}
        self.front_counters: FrontCounters | None = None
        self.rollbacks_seen = 0
        self._watching_since = self.clock.now().timestamp()
        self._backups = BackupState()
        journal.subscribe(self._on_event)

    # lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self.dispatcher.start()
        for probe in self.probes:
            self._spawn(f"probe-{probe.name}", self._run_probe, probe)
        self._spawn("watch-rules", self._run_rules)
        self._spawn("watch-readings", self._run_readings)
        if self.settings.watch.heartbeat_url:
            self._spawn("watch-heartbeat", self._run_heartbeat)

    def stop(self) -> None:
        self._stop.set()
        self._probed.set()
        for thread in self._threads:
            thread.join(timeout=3)
        self.dispatcher.stop()
        self.samples.close()
        self.alert_store.close()

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        self._threads.append(start_named(name, target, *args))

    # probes --------------------------------------------------------------------

    def _run_probe(self, probe: Probe) -> None:
        next_at = time.monotonic()
        # each result is filed under the wall-clock second of its *scheduled* start, so
        # one tick is one second even when a start is late by a few milliseconds
        offset = self.clock.now().timestamp() - next_at
        with self.front.client(probe.timeout) as client:
            while not self._stop.is_set():
                if abs(self.clock.now().timestamp() - (offset + time.monotonic())) > JUMP_SECONDS:
                    offset = self.clock.now().timestamp() - time.monotonic()  # the clock jumped
                at_s = int(offset + next_at)
                self.record_probe(probe.name, at_s, probe.run(client))
                for socket in self.sources.canary_sockets():
                    with Target("http://canary", socket).client(probe.timeout) as canary:
                        self.record_probe(f"{probe.name}@canary", at_s, probe.run(canary))
                next_at += probe.every
                now = time.monotonic()
                if next_at < now:  # late (a machine pause): skip ahead, never burst
                    next_at = now + probe.every - (now - next_at) % probe.every
                self._stop.wait(next_at - now)

    def record_probe(self, name: str, at_s: int, result: ProbeResult) -> None:
        """One result: stored, counted for the rules, and a journal event when it changes."""
        self.samples.record_probe(name, at_s, ok=result.ok, latency_ms=result.latency_ms)
        with self._lock:
            state = self.probe_states.setdefault(name, ProbeState())
            if name == LIVENESS:
                self.liveness.add(at_s, good=int(result.ok), bad=int(not result.ok))
                self._last_probe_mono = self.clock.monotonic()
                if result.latency_ms is not None:
                    state.latencies.append((at_s, result.latency_ms))
            was_failing = state.failing_since is not None
            state.last = result
            state.last_at = float(at_s)
            state.ok_total += result.ok
            state.failed_total += not result.ok
            state.failed_runs = 0 if result.ok else state.failed_runs + 1
            if result.ok:
                state.failed_at.clear()
            else:
                state.failed_at.append(at_s)
            if "@" not in name:  # the rules look at once: a page leaves with the failure that completes it
                self._probed.set()
            if not result.ok and not was_failing:
                state.failing_since = float(at_s)
            elif result.ok and was_failing:
                down = at_s - (state.failing_since or at_s)
                state.failing_since = None
        if not result.ok and not was_failing:
            target = "canary" if "@" in name else "front door"
            self.journal.append(
                "probe.failed", f"probe {name} failed: {result.error}", severity="warning",
                release=self.sources.serving(),
                body={"probe": name, "target": target, "error": result.error},
            )  # fmt: skip
        elif result.ok and was_failing:
            self.journal.append(
                "probe.recovered", f"probe {name} recovered after {down}s",
                release=self.sources.serving(),
                body={"probe": name, "down_seconds": down},
            )  # fmt: skip

    # rules ---------------------------------------------------------------------

    def _run_rules(self) -> None:
        """The rules right after each production probe result (a page leaves with the failure
        that completes a rule), and at least once a second. Nothing here waits on the outside:
        readings come from ``_run_readings``."""
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._probed.wait(max(0.0, next_at - time.monotonic()))
            self._probed.clear()
            if self._stop.is_set():
                return
            try:
                self.evaluate()
            except Exception as exc:  # the loop must outlive any bug in one pass
                self.journal.append("watch.error", f"alert rules failed: {exc!r}", severity="error")
            if time.monotonic() >= next_at:
                next_at = max(next_at + 1.0, time.monotonic())

    def _run_readings(self) -> None:
        """Once a second: HAProxy's counters, the readings (the database ping may wait for its
        timeout), the per-minute roll-up; apart from the rules so a slow reading never delays
        a page."""
        next_at = time.monotonic()
        last_wall, last_mono = time.time(), time.monotonic()
        slow_every = max(1, round(self.settings.watch.database_check_seconds))
        tick = 0
        while not self._stop.is_set():
            wall, mono = time.time(), time.monotonic()
            self._say_if_clock_jumped(wall - last_wall, mono - last_mono)
            last_wall, last_mono = wall, mono
            try:
                self.read_traffic()
                self.read_checks(slow=tick % slow_every == 0)
                self.samples.roll_up(self._now_s())
            except Exception as exc:
                self.journal.append("watch.error", f"watch readings failed: {exc!r}", severity="error")
            tick += 1
            next_at = max(next_at + 1.0, time.monotonic())
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _say_if_clock_jumped(self, wall_delta: float, mono_delta: float) -> None:
        if abs(wall_delta - mono_delta) > JUMP_SECONDS:
            self.journal.append(
                "watch.clock_jumped",
                f"the system clock jumped {wall_delta - mono_delta:+.0f}s; "
                "windows around the jump have gaps, probing goes on",
                severity="warning",
            )

    def read_traffic(self) -> None:
        try:
            counters = self.sources.front_counters()
            self.slot_stats = self.sources.server_stats()
        except Exception:
            return  # HAProxy restarting: the probes say what users see meanwhile
        if counters is None:
            return
        if self._front_before is not None:
            requests, failures = counted_between(self._front_before, counters)
            at_s = self._now_s()
            with self._lock:
                self.traffic.add(at_s, good=requests - failures, bad=failures)
            self._store_traffic(at_s, requests, failures)
        self._front_before = counters
        self.front_counters = counters

    def _store_traffic(self, at_s: int, requests: int, failures: int) -> None:
        """A second's row is written once, when the next second begins (two readings can fall
        in one second): incident impact and charts read these rows."""
        pending = self._pending_traffic
        if pending is not None and pending[0] != at_s:
            self.samples.record_traffic(pending[0], requests=pending[1], failures=pending[2])
            pending = None
        if pending is None:
            self._pending_traffic = (at_s, requests, failures)
        else:
            self._pending_traffic = (at_s, pending[1] + requests, pending[2] + failures)

    def read_checks(self, *, slow: bool) -> None:
        db_ok, db_error = (
            self._db.check() if slow else (self.readings.database_ok, self.readings.database_error)
        )
        # backup attempts are journaled by whichever process ran them (``watch/backups.py``);
        # with ops.db busy or failing, the last state stands until the next check
        with contextlib.suppress(sqlite3.Error):
            if slow:
                self._backups = read_backup_state(self.journal)
        backups = self._backups
        self.readings = Readings(
            disk_used_percent=read_disk_used_percent(self.data_dir),
            database_ok=db_ok,
            database_error=db_error,
            backup_age_seconds=read_backup_age(
                self.data_dir / "backups", watching_since=self._watching_since,
                now=self.clock.now().timestamp(), journaled=backups.newest_created_at,
            ),
            backup_failed_reason=backups.failed_reason,
            backup_failed_at=backups.failed_at,
            loop_lag_seconds=self.loop_lag.measure(timeout=2.0),
        )  # fmt: skip

    def observations(self) -> Observations:
        now_s = self._now_s()
        window = self.settings.watch.latency_window_seconds
        with self._lock:
            state = self.probe_states.get(LIVENESS)
            latencies = [ms for at, ms in (state.latencies if state else ()) if now_s - at < window]
            silence = self.clock.monotonic() - self._last_probe_mono
            probes = {
                name: ProbeStreak(s.failed_runs, s.last.error if s.last and not s.last.ok else None,
                                  tuple(s.failed_at))
                for name, s in self.probe_states.items()
            }
        return Observations(
            now_s=now_s, liveness=self.liveness, traffic=self.traffic, latencies_ms=latencies,
            probe_silence_seconds=silence, readings=self.readings, rollbacks=list(self.rollbacks),
            probes=probes,
        )  # fmt: skip

    def evaluate(self) -> list[Change]:
        self._notice_a_pause()
        obs = self.observations()
        verdicts = {name: (rule, rule.evaluate(obs)) for name, rule in self.rules.items()}
        self.last_verdicts = {name: v for name, (_, v) in verdicts.items()}
        now = self.clock.now().timestamp()
        with self._lock:
            changes = self.book.step(now, verdicts)
        for change in changes:
            self.apply(change)
        return changes

    def _notice_a_pause(self) -> None:
        """A guard that was stopped (SIGSTOP, a paused VM) has no probe results for that time,
        and its probes had no chance to run either: once paged as "probes are not running"
        the moment it resumed. The silence counts from the resume instead; the guard being
        gone or frozen is the dead man's switch's to tell (``watch.heartbeat_url``)."""
        now = self.clock.monotonic()
        last, self._last_evaluated_mono = self._last_evaluated_mono, now
        if last is None or now - last < PAUSED_SECONDS:
            return
        with self._lock:
            self._last_probe_mono = max(self._last_probe_mono, now)
        self.journal.append(
            "watch.paused",
            f"the guard did not run for {now - last:.0f}s (stopped, or the machine paused); "
            "probe silence counts from now",
            severity="warning",
        )

    def apply(self, change: Change) -> None:
        """Record one change and tell the channels what it means for them."""
        alert = change.alert
        self.alert_store.save(alert)
        # a reminder has its own kind: one incident per alert.firing, none per reminder
        kind = {"renotify": "alert.renotified"}.get(change.kind, f"alert.{change.kind}")
        severity = "critical" if alert.severity == "page" and change.kind == "firing" else (
            "warning" if change.kind in ("firing", "pending", "escalated", "renotify") else "info"
        )  # fmt: skip
        # the summary says what went wrong: once resolved, it is what was wrong, not news
        message = (
            f"{alert.rule} resolved; it was: {alert.summary}" if change.kind == "resolved"
            else f"{alert.rule} {change.kind}: {alert.summary}"
        )  # fmt: skip
        self.journal.append(
            kind, message, severity=severity,
            release=self.sources.serving(),
            body={"alert_id": alert.alert_id, "rule": alert.rule, "severity": alert.severity,
                  "summary": alert.summary, "value": alert.value, "silenced": change.silenced,
                  "by": change.by, "repeat": change.kind == "renotify",
                  "fired": alert.fired_at is not None},
        )  # fmt: skip
        if change.silenced:
            return
        action = {"firing": "trigger", "renotify": "trigger", "escalated": "trigger",
                  "acknowledged": "acknowledge", "resolved": "resolve"}.get(change.kind)  # fmt: skip
        if action is None or (change.kind == "resolved" and alert.fired_at is None):
            return
        self.dispatcher.submit(
            Notice(
                action=action, alert_id=alert.alert_id, dedup_key=alert.dedup_key, rule=alert.rule,  # type: ignore[arg-type]
                severity=alert.severity, summary=alert.summary, source=self.front.base_url,
                status_url=self.status_url, escalation=change.kind == "escalated",
                repeat=change.kind == "renotify",
                details={"release": self.sources.serving(), "value": alert.value, **alert.details},
            )
        )  # fmt: skip

    # people --------------------------------------------------------------------

    def acknowledge(self, alert: str, *, by: str) -> Alert:
        with self._lock:
            change = self.book.acknowledge(alert, by=by, now=self.clock.now().timestamp())
        self.apply(change)
        return change.alert

    def silence(self, rule_name: str, *, seconds: float, reason: str, by: str) -> dict[str, Any]:
        from steadylink.errors import InvalidInput

        rule = self.rules.get(rule_name)
        if rule is None:
            raise InvalidInput(
                f"No rule {rule_name!r}; rules: {', '.join(sorted(self.rules))}.", field="rule"
            )
        now = self.clock.now().timestamp()
        with self._lock:
            change = self.book.silence(rule, until=now + seconds, reason=reason, by=by, now=now)
        self.alert_store.save_silence(self.book.silences[rule.name])
        self.journal.append(
            "alert.silenced", f"{rule.name} silenced for {seconds:.0f}s by {by}: {reason}",
            body={"alert_id": change.alert.alert_id, "rule": rule.name, "severity": rule.severity,
                  "summary": reason, "value": seconds, "by": by, "until": now + seconds},
        )  # fmt: skip
        return {"rule": rule.name, "until": now + seconds, "reason": reason, "by": by}

    # status --------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        now_s = int(now.timestamp())
        spent_year, spent_month, req_year, req_month = self._spent(now)
        with self._lock:
            hour = self.liveness.window(now_s, 3600)
            req_hour = self.traffic.window(now_s, 3600)
            five = self.liveness.window(now_s, 300)
            open_alerts = [a.to_json() for a in self.book.open.values()]
            probes = {n: {"ok": s.last.ok, "latency_ms": s.last.latency_ms, "error": s.last.error}
                      for n, s in self.probe_states.items() if s.last}  # fmt: skip
        return {
            "objective": {"availability_percent": round(self.objective.availability_percent, 6),
                          "budget_minutes_per_year": round(self.objective.budget_minutes_per_year, 2),
                          "redirect_latency_ms": self.settings.slo.redirect_latency_ms},
            "budget": {
                "time_based": [year_budget(self.objective, spent_year).to_json(),
                               month_budget(self.objective, spent_month).to_json()],
                "request_based": [_request_budget("this year", req_year, self.objective),
                                  _request_budget("last 30 days", req_month, self.objective)],
            },
            "burn_rate": {
                "probes_1h": round(self.objective.burn_rate(hour.bad_ratio), 2),
                "probes_5m": round(self.objective.burn_rate(five.bad_ratio), 2),
                "requests_1h": round(self.objective.burn_rate(req_hour.bad_ratio), 2),
            },
            "firing": [a for a in open_alerts if a["state"] == "firing"],
            "pending": [a for a in open_alerts if a["state"] == "pending"],
            "probes": probes,
            "readings": self.readings.__dict__,
        }  # fmt: skip

    # internals -----------------------------------------------------------------

    def _spent(self, now: datetime) -> tuple[int, int, tuple[int, int], tuple[int, int]]:
        """Bad seconds and (requests, failures) this year and over 30 days, from ops.db.

        Summing a year of minutes takes tens of milliseconds; a scraper asking every
        second would make that a noticeable share of a core, so the sums are kept
        ``SPENT_CACHE_SECONDS``.
        """
        mono = self.clock.monotonic()
        if self._spent_cache is not None and mono - self._spent_cache[0] < SPENT_CACHE_SECONDS:
            return self._spent_cache[1]
        now_s = int(now.timestamp())
        year_start = int(start_of_year(now).timestamp())
        month_start = now_s - 30 * 86_400
        spent = (
            self.samples.bad_probe_seconds(LIVENESS, year_start, now_s + 1),
            self.samples.bad_probe_seconds(LIVENESS, month_start, now_s + 1),
            self.samples.traffic(year_start, now_s + 1),
            self.samples.traffic(month_start, now_s + 1),
        )
        self._spent_cache = (mono, spent)
        return spent

    def _on_event(self, event: Event) -> None:
        if event.kind != "release.rolled_back":
            return
        body = event.body
        if body.get("automatic") and body.get("reached_users"):
            at_s = int(event.at.timestamp())
            self.rollbacks.append(RollbackSeen(at_s, event.release, str(body.get("reason") or "")))
            self.rollbacks_seen += 1

    def _run_heartbeat(self) -> None:
        url = self.settings.watch.heartbeat_url or ""
        failing = False
        while not self._stop.is_set():
            try:
                ok = httpx.get(url, timeout=self.settings.notify.timeout_seconds).status_code < 400
            except httpx.HTTPError:
                ok = False
            if ok == failing:  # said once on change, not every minute
                failing = not ok
                self.journal.append(
                    "watch.heartbeat", "heartbeat URL " + ("does not answer" if failing else "answers again"),
                    severity="warning" if failing else "info",
                )  # fmt: skip
            self._stop.wait(self.settings.watch.heartbeat_seconds)

    def _now_s(self) -> int:
        return int(self.clock.now().timestamp())


def _request_budget(span: str, counts: tuple[int, int], objective: Objective) -> dict[str, Any]:
    requests, failures = counts
    allowed = requests * objective.allowed_ratio
    left = 100.0 * (allowed - failures) / allowed if allowed else 100.0
    return {"span": span, "requests": requests, "failures": failures,
            "allowed_failures": round(allowed, 1), "left_percent": round(left, 2)}  # fmt: skip
