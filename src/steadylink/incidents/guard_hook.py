"""The incidents part inside a running guard: its service, its tracker, the front door's counters.

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
from steadylink.incidents.traffic import Totals
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
        front_door=lambda: front_door_totals(guard),
        traffic_retention=timedelta(days=settings.incidents.traffic_retention_days),
        rules=OpeningRules(unguarded_window=timedelta(minutes=settings.incidents.unguarded_minutes)),
        housekeeping=rotator.rotate_if_due,
    )
    tracker.start()
    return RunningIncidents(incidents, tracker)


def front_door_totals(guard: Guard) -> Totals | None:
    """What users got from all slots so far (HAProxy's cumulative counters), or None if it does not answer."""
    if guard.edge is None:
        return None
    try:
        stats = guard.edge.runtime.server_stats()
    except Exception:
        return None  # HAProxy restarting: the sampler counts from zero when it is back
    responses = sum(s.responses for s in stats.values())
    failures = sum(s.hrsp_5xx for s in stats.values())
    return Totals(responses, failures)
