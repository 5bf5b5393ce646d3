"""The loop in the guard that feeds the opening rules and writes incident timelines.

It reads the journal after the last event it handled (the cursor is kept in
``ops.db``, so a restarted guard neither misses nor repeats an event; a first
start begins at the newest event, not at history), asks ``OpeningRules``,
and opens, joins or links. Once a second it also looks at the seconds the
watch's sampler wrote (``traffic.py``) and says the first 5xx after a quiet
minute in the journal (``traffic.errors``). It runs on its own thread: the journal's
``subscribe`` only wakes it, so a deploy that appends events never waits on it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import timedelta

from steadylink.incidents.model import Status
from steadylink.incidents.rules import Ignore, Join, Open, OpeningRules
from steadylink.incidents.service import Incidents
from steadylink.incidents.traffic import FirstFailures, read_seconds_after
from steadylink.watch.journal import Event, Journal
from steadylink.watch.opsdb import connect_ops_db

LEADUP = timedelta(minutes=30)
ONE_MS = timedelta(milliseconds=1)
SAMPLE_SECONDS = 1.0

_CURSOR_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS incident_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), event_id INTEGER)"
)


class IncidentTracker:
    def __init__(
        self,
        incidents: Incidents,
        journal: Journal,
        *,
        rules: OpeningRules | None = None,
        housekeeping: Callable[[], None] | None = None,
    ) -> None:
        self.incidents = incidents
        self.journal = journal
        self.rules = rules or OpeningRules()
        self.housekeeping = housekeeping
        self.first_failures = FirstFailures()
        self._conn = connect_ops_db(journal.path)
        self._conn.execute(_CURSOR_SCHEMA)
        # Seconds already in ops.db are history, not news: look only at what comes after.
        self._traffic_after_s = int(incidents.store.clock.now().timestamp())
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor = self._load_cursor()
        self._save_cursor()  # from now on, a restart goes on from here

    # the loop ------------------------------------------------------------------

    def start(self) -> None:
        self.journal.subscribe(lambda event: self._wake.set())
        self._thread = threading.Thread(target=self._run, name="incident-tracker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(SAMPLE_SECONDS)
            self._wake.clear()
            try:
                self.handle_new_events()
                self.watch_front_door()
                if self.housekeeping is not None:
                    self.housekeeping()
            except Exception as exc:  # the guard goes on; the next pass tries again
                print(f"incidents: {type(exc).__name__}: {exc}", file=sys.stderr)

    # one pass (tests call these directly) --------------------------------------

    def handle_new_events(self) -> int:
        handled = 0
        while events := self.journal.read(after_id=self._cursor, limit=500):
            for event in events:
                self.handle(event)
                self._cursor = event.id
                handled += 1
            self._save_cursor()
        return handled

    def handle(self, event: Event) -> None:
        if event.kind.startswith("incident."):
            return
        store = self.incidents.store
        current = store.open_incident()
        decision = self.rules.decide(event, has_open=current is not None)
        if isinstance(decision, Ignore):
            return
        if isinstance(decision, Open):
            current = self.incidents.open(
                title=decision.title, by="guard", severity=decision.severity, at=event.at
            )
            self._link_leadup(current.id, event)
        assert current is not None
        store.link_event(current.id, event.id)
        changed = False
        if (
            event.release
            and event.kind.startswith(("release.", "deploy.", "canary."))
            and (event.release not in current.releases)
        ):
            current.releases.append(event.release)
            changed = True
        alert_id = event.body.get("alert_id")
        if event.kind.startswith("alert.") and alert_id and str(alert_id) not in current.alerts:
            current.alerts.append(str(alert_id))
            changed = True
        if changed:
            store.save(current)
        if event.kind == "release.rolled_back" and current.status.rank < Status.MONITORING.rank:
            # the bad release is out: what is left is to watch that it stays good
            self.incidents.set_status(current.id, status=Status.MONITORING, by="guard")
        if isinstance(decision, Join):
            store.add_update(
                current.id,
                kind="note",
                author="guard",
                at=event.at,
                text=f"Joined: {decision.reason} ({event.message})",
            )

    def watch_front_door(self) -> None:
        """Read the seconds the watch wrote since the last pass; journal the first 5xx of a bout."""
        for second in read_seconds_after(self._conn, self._traffic_after_s):
            self._traffic_after_s = second.at_s
            if self.first_failures.began(second):
                self.journal.append(
                    "traffic.errors",
                    f"first 5xx seen at the front door: {second.failures} of {second.requests} requests",
                    severity="warning",
                    body={"failures": second.failures, "requests": second.requests},
                )

    # internals ---------------------------------------------------------------------

    def _link_leadup(self, incident_id: int, trigger: Event) -> None:
        """The events that led up to it: the release's deploy, recent failures, the first 5xx."""
        store = self.incidents.store
        incident = store.get(incident_id)
        # up to the trigger's own id, not its instant: a canary's failed step and its rollback are
        # often journalled within the same millisecond, and ``until`` leaves that millisecond out;
        # newest first, so a busy half hour keeps the events nearest the trigger
        recent = self.journal.read(
            since=trigger.at - LEADUP, until=trigger.at + ONE_MS, limit=5000, newest_first=True
        )
        for event in recent:
            if event.id > trigger.id:
                continue  # journalled after it: the loop handles it and it joins
            is_release = trigger.release is not None and event.release == trigger.release
            is_signal = event.kind in ("probe.failed", "traffic.errors") or event.kind.startswith("alert.")
            if is_release or is_signal:
                store.link_event(incident_id, event.id)
        if trigger.release and trigger.release not in incident.releases:
            incident.releases.append(trigger.release)
            store.save(incident)

    def _load_cursor(self) -> int:
        row = self._conn.execute("SELECT event_id FROM incident_cursor WHERE id = 1").fetchone()
        if row is not None:
            cursor = int(row[0])
        else:
            newest = self.journal.read(newest_first=True, limit=1)
            cursor = newest[0].id if newest else 0
        # What the rules remember (unguarded deploys) is rebuilt from the last hour before
        # the cursor, without acting on it: a restart must not forget a --no-canary deploy.
        since = self.incidents.store.clock.now() - self.rules.unguarded_window
        for event in self.journal.read(since=since, limit=100_000):
            if event.id <= cursor:
                self.rules.decide(event, has_open=True)
        return cursor

    def _save_cursor(self) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO incident_cursor (id, event_id) VALUES (1, ?)", (self._cursor,)
            )
