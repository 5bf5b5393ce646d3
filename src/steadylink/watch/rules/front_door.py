"""The front door failing: the liveness probe failed this many seconds in a row.

A gap (no probe result for a second) breaks the run: missing data is the
``probes_stale`` rule's business, and a clock that jumps must not page here.
Except at the end: the probe of the current second (and, when it times out,
of the one before) is still on its way, so the run is counted back from the
newest second that has a result, if it is at most ``IN_FLIGHT`` seconds old.
"""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind

IN_FLIGHT = 2


@rule_kind
class FrontDoorDown(Rule):
    kind = "front_door_down"

    def __init__(self, seconds: int) -> None:
        self.name = "front_door_down"
        self.severity = "page"
        self.seconds = seconds
        self.description = f"the liveness probe failed {seconds} seconds in a row"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        return [cls(settings.watch.front_door_failed_seconds)]

    def evaluate(self, obs: Observations) -> Verdict:
        cells = obs.liveness.last(obs.now_s, 120)
        for _ in range(IN_FLIGHT):
            if cells and cells[-1] is None:
                cells.pop()
        run = 0
        for cell in reversed(cells):
            if cell is None or cell[1] == 0:
                break
            run += 1
        return Verdict(
            active=run >= self.seconds,
            summary=f"front door failing: the liveness probe failed {run} seconds in a row",
            value=float(run),
        )
