"""A user's transaction failing: the ``create`` or the ``ui`` probe failed N runs in a row.

The liveness probe (``redirect``) has ``front_door_down``; these two run every
10 s, so their rule counts runs, not seconds. One failed run may be a timeout
on a busy machine; two in a row (10 to 20 s after the failure begins, about
1.5 % of a 20-minute yearly budget) is an outage of creating links or of the
UI while redirects still work, and pages. Only production's results count: a
canary socket's (``create@canary``) belong to the deploy, which stops a bad
canary itself.

A failed run while the liveness probe failed too (around its second) is not
counted: the whole front door failing fails every probe, ``front_door_down``
has paged for that already, and a second page for the same outage is noise.
If creating links still fails once the front door is back, the runs after it
count. The alert resolves with the first good run (``clear_seconds`` 0: the
next run is 10 s away, a quiet wait would only delay the resolve).
"""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, ProbeStreak, Rule, Verdict, rule_kind

# A run filed under second t takes up to three requests of a probe timeout each: it met the
# front door failing if the liveness probe failed in [t - 1, t + AROUND].
AROUND = 2


@rule_kind
class ProbeFailing(Rule):
    kind = "probe_failing"

    def __init__(self, probe: str, runs: int) -> None:
        self.name = f"{probe}_probe_failing"
        self.severity = "page"
        self.probe = probe
        self.runs = runs
        self.clear_seconds = 0.0
        self.description = f"the {probe} probe failed {runs} runs in a row"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        w = settings.watch
        return [cls("create", w.create_probe_failed_runs), cls("ui", w.ui_probe_failed_runs)]

    def evaluate(self, obs: Observations) -> Verdict:
        streak = obs.probes.get(self.probe, ProbeStreak())
        window = obs.liveness.window
        with_front_door = sum(1 for at in streak.failed_at if window(at + AROUND, AROUND + 2).bad)
        own = streak.failed_runs - with_front_door
        return Verdict(
            active=own >= self.runs,
            summary=(
                f"the {self.probe} probe failed {own} runs in a row while redirects worked "
                f"(limit {self.runs}): {streak.last_error or 'no error'}"
            ),
            value=float(own),
            details={"probe": self.probe, "error": streak.last_error, "failed_runs": streak.failed_runs},
        )
