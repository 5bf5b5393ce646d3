"""The guard's own event loop lags (its ops API, dashboard and status page answer late)."""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind


@rule_kind
class LoopLag(Rule):
    kind = "loop_lag"

    def __init__(self, max_seconds: float) -> None:
        self.name = "loop_lag"
        self.severity = "ticket"
        self.max_seconds = max_seconds
        self.for_seconds = 10.0
        self.description = f"the guard's event loop lagging over {max_seconds:g}s"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        return [cls(settings.watch.loop_lag_max_seconds)]

    def evaluate(self, obs: Observations) -> Verdict:
        lag = obs.readings.loop_lag_seconds
        return Verdict(
            active=lag is not None and lag > self.max_seconds,
            summary=f"the guard's event loop lags {lag or 0:.2f}s (limit {self.max_seconds:g}s)",
            value=lag,
        )
