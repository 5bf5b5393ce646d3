"""What the guard serves beside its release API: incidents, the status page, the dashboard.

One hook for ``create_ops_app``, so that file changes by a line when parts
are added here. Without an ``Incidents`` service (tests of the release API)
one is made over the guard's ``ops.db``, without a journal.
"""

from __future__ import annotations

from fastapi import FastAPI

from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.ops.dashboard import Acknowledge, WatchStatus, include_dashboard
from steadylink.ops.incidents_api import Caller, Need, include_incidents
from steadylink.ops.keys import OpsKeys
from steadylink.ops.pages import include_static
from steadylink.ops.status import include_status_page
from steadylink.release.guard import Guard


def include_guard_pages(
    app: FastAPI,
    guard: Guard,
    keys: OpsKeys,
    incidents: Incidents | None,
    *,
    caller: Caller,
    need: Need,
    watch_status: WatchStatus | None = None,
    acknowledge_alert: Acknowledge | None = None,
) -> None:
    if incidents is None:
        incidents = Incidents(IncidentStore.for_data_dir(guard.data_dir, clock=guard.clock))
    include_static(app)
    include_incidents(app, incidents, caller=caller, need=need)
    include_status_page(app, incidents, title=guard.settings.status.title)
    include_dashboard(
        app, guard, keys, incidents, watch_status=watch_status, acknowledge_alert=acknowledge_alert
    )
