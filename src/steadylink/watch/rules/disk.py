"""The data folder's disk is nearly full (a page: SQLite, spool and journal stop when it is)."""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind


@rule_kind
class DiskFull(Rule):
    kind = "disk_full"

    def __init__(self, max_percent: float) -> None:
        self.name = "disk_full"
        self.severity = "page"
        self.max_percent = max_percent
        self.for_seconds = 10.0
        self.description = f"the data folder's disk over {max_percent:g} % used"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        return [cls(settings.watch.disk_used_max_percent)]

    def evaluate(self, obs: Observations) -> Verdict:
        used = obs.readings.disk_used_percent
        if used is None:
            return Verdict(False, "disk use unknown")
        return Verdict(
            active=used > self.max_percent,
            summary=f"the data folder's disk is {used:.1f} % full (limit {self.max_percent:g} %)",
            value=used,
        )
