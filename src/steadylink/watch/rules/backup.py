"""The newest verified backup of the links database is too old (a ticket)."""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind


@rule_kind
class BackupAge(Rule):
    kind = "backup_age"

    def __init__(self, max_hours: float) -> None:
        self.name = "backup_age"
        self.severity = "ticket"
        self.max_seconds = max_hours * 3600
        self.description = f"no verified backup for {max_hours:g} hours"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        return [cls(settings.watch.backup_max_age_hours)]

    def evaluate(self, obs: Observations) -> Verdict:
        age = obs.readings.backup_age_seconds
        if age is None:
            return Verdict(False, "backup age unknown")
        return Verdict(
            active=age > self.max_seconds,
            summary=f"the newest verified backup is {age / 3600:.1f} hours old; "
            "run `steadylink backup`",
            value=round(age),
        )
