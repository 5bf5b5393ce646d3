"""No data is not good news: the probes stopped reporting."""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind


@rule_kind
class ProbesStale(Rule):
    kind = "probes_stale"

    def __init__(self, seconds: float) -> None:
        self.name = "probes_stale"
        self.severity = "page"
        self.seconds = seconds
        self.description = f"no probe result for {seconds:g}s"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        return [cls(settings.watch.probes_stale_seconds)]

    def evaluate(self, obs: Observations) -> Verdict:
        silence = obs.probe_silence_seconds
        return Verdict(
            active=silence >= self.seconds,
            summary=f"no probe result for {silence:.0f}s: the guard's probes are not running",
            value=round(silence, 1),
        )
