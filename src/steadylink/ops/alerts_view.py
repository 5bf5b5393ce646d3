"""Firing alerts as the journal tells them: the last transition of each alert id wins.

The watch part owns alert state; the dashboard reads its events so it works
with whatever the watch part keeps. Acknowledging from the dashboard goes
through the watch itself (``Watcher.acknowledge``), which writes the
``alert.acknowledged`` event read back here.
"""

from __future__ import annotations

from typing import Any

from steadylink.watch.journal import Event

FIRING = ("alert.firing", "alert.escalated")


def firing_alerts(events: list[Event]) -> list[dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for event in events:
        alert_id = event.body.get("alert_id")
        if not alert_id:
            continue
        key = str(alert_id)
        if event.kind in FIRING:
            known = state.get(key, {})
            state[key] = {
                "alert_id": key,
                "rule": event.body.get("rule", ""),
                "severity": event.body.get("severity", ""),
                "summary": event.body.get("summary", event.message),
                "since": known.get("since", event.at),
                "acknowledged_by": known.get("acknowledged_by"),
            }
        elif event.kind == "alert.acknowledged" and key in state:
            state[key]["acknowledged_by"] = event.body.get("by") or "someone"
        elif event.kind == "alert.resolved":
            state.pop(key, None)
    return sorted(state.values(), key=lambda a: a["since"])
