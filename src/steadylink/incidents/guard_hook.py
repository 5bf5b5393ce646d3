"""The incidents part inside a running guard: its service and its tracker.

The front door's per-second figures are the watch's (``watch/samples.py``);
the tracker reads them, it does not sample HAProxy itself.

``start_incidents`` is what ``steadylink up`` calls once the guard runs; the
returned ``RunningIncidents`` is stopped with the guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from steadylink.incidents.logs import WorkerLogRotator
from steadylink.incidents.rules import OpeningRules
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.incidents.subscribers import AppriseSubscribers
from steadylink.incidents.tracker import IncidentTracker
from steadylink.release.guard import Guard
from steadylink.watch.journal import Journal


@dataclass
class RunningIncidents:
    incidents: Incidents
    tracker: IncidentTracker

    def stop(self) -> None:
        self.tracker.stop()
        self.incidents.store.close()


def start_incidents(guard: Guard, journal: Journal) -> RunningIncidents:
    settings = guard.settings
    store = IncidentStore(journal.path, clock=guard.clock)
    subscribers = AppriseSubscribers(settings.status.subscribers, journal=journal)
    incidents = Incidents(store, journal, subscribers, status_title=settings.status.title)
    rotator = WorkerLogRotator(
        guard.run_dir,
        max_bytes=settings.incidents.worker_log_max_mb * 1024 * 1024,
        keep=settings.incidents.worker_log_keep,
        max_age=timedelta(days=settings.incidents.worker_log_max_age_days),
    )
    tracker = IncidentTracker(
        incidents,
        journal,
        rules=OpeningRules(unguarded_window=timedelta(minutes=settings.incidents.unguarded_minutes)),
        housekeeping=rotator.rotate_if_due,
    )
    tracker.start()
    return RunningIncidents(incidents, tracker)
