"""A recorded incident in a data folder: the seed's bug (json.load on a str) canaried and rolled back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from steadylink.clock import FakeClock
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.incidents.tracker import IncidentTracker
from steadylink.incidents.traffic import Second
from steadylink.release.history import ReleaseRecord, StepRecord, save_record
from steadylink.watch.journal import Journal
from steadylink.watch.samples import Samples

GOOD = "20260101000000-aaaa111"
BAD = "20260101000100-bbbb222"
APP = [
    "import json",
    *[f"# line {n}" for n in range(2, 19)],
    "def index(body):",
    "    return json.loads(body)",
]


@dataclass
class Recorded:
    incident_id: int
    failed: int
    requests: int
    bad_seconds: int


def record_incident(data_dir: Path, clock: FakeClock) -> Recorded:
    start = clock.now()
    for release, line in ((GOOD, "    return json.loads(body)"), (BAD, "    return json.load(body)")):
        tree = data_dir / "releases" / release / "src"
        tree.mkdir(parents=True)
        (tree / "application.py").write_text("\n".join([*APP[:-1], line]) + "\n")
        steps = [StepRecord(g, "passed", start, 1.0) for g in ("ruff", "tests", "staging")]
        if release == BAD:
            steps.append(
                StepRecord("canary", "failed", start, 4.0, figures={"error_ratio": 0.5, "percent": 5})
            )
        save_record(data_dir, ReleaseRecord(release, "main", release[-7:] * 5, "load the body", "dev", "alice",
                                            start, steps=steps, verdict="promoted" if release == GOOD else "rolled_back"))  # fmt: skip
    journal = Journal.for_data_dir(data_dir, clock=clock)
    store = IncidentStore.for_data_dir(data_dir, clock=clock)
    incidents = Incidents(store, journal)
    tracker = IncidentTracker(incidents, journal)
    journal.append(
        "deploy.started",
        "alice deploys main",
        release=BAD,
        body={"ref": "main", "source": "/src", "by": "alice"},
    )
    for gate in ("ruff", "tests", "staging"):
        clock.advance(1)
        journal.append(
            "deploy.step",
            f"{gate} passed",
            release=BAD,
            body={"step": gate, "verdict": "passed", "seconds": 1},
        )
    clock.advance(1)
    journal.append("canary.weight", "canary at 5 %", release=BAD, body={"slot": 2, "weight": 5, "percent": 5})
    samples = Samples(journal.path)  # the watch's sampler: the only writer of the front door's figures
    at = int(clock.now().timestamp())
    seconds = [Second(at + n, 100, 40 if 1 <= n <= 3 else 0) for n in range(6)]
    for s in seconds:
        samples.record_traffic(s.at_s, requests=s.requests, failures=s.failures)
    samples.close()
    clock.advance(1)
    journal.append(
        "traffic.errors", "first 5xx seen at the front door: 40 of 100 requests", severity="warning"
    )
    clock.advance(3)
    journal.append("release.rolled_back", "canary rolled back: 5xx 50 %", release=BAD, severity="error",
                   body={"automatic": True, "by": "guard", "reason": "error ratio 50 %", "reached_users": True,
                         "step": "canary"})  # fmt: skip
    clock.advance(20)
    journal.append(
        "probe.recovered", "redirect probe recovered", body={"probe": "redirect", "down_seconds": 0}
    )
    tracker.handle_new_events()
    run = data_dir / "run"
    run.mkdir(exist_ok=True)
    error = {"event": "error", "level": "error", "timestamp": (start + timedelta(seconds=6)).isoformat(),
             "exception": "AttributeError", "message": "'str' object has no attribute 'read'",
             "where": "application.py:20", "release": BAD,
             "frames": [{"file": "application.py", "line": 20, "function": "index"}],
             "traceback": "Traceback (most recent call last):\n  File \"application.py\", line 20, in index\n"
                          "AttributeError: 'str' object has no attribute 'read'"}  # fmt: skip
    (run / "slot2.log").write_text((json.dumps(error) + "\n") * 120)
    (incident,) = store.list_incidents()
    tracker.stop()
    store.close()
    journal.close()
    return Recorded(incident.id, failed=120, requests=400, bad_seconds=3)  # t0+5 .. t0+8
