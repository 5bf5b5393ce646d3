"""The links database does not answer a ping within its timeout (SQLite or PostgreSQL)."""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind


@rule_kind
class DatabaseDown(Rule):
    kind = "database_down"

    def __init__(self, check_seconds: float) -> None:
        self.name = "database_down"
        self.severity = "page"
        # one slow ping is not an outage: the next check must fail too
        self.for_seconds = check_seconds
        self.description = "the links database not answering"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        return [cls(settings.watch.database_check_seconds)]

    def evaluate(self, obs: Observations) -> Verdict:
        ok = obs.readings.database_ok
        return Verdict(
            active=ok is False,
            summary=f"the links database does not answer ({obs.readings.database_error or 'no reason'})",
        )
