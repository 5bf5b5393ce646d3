"""Requests failing at the front door: their share over a short window, above a floor of requests.

Requests are HAProxy's (5xx, connection errors, timeouts over all requests the
slots were given). Below ``error_ratio_min_requests`` requests in the window
the ratio says nothing, so the rule stays quiet: one stray error at low
traffic never pages.
"""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind


@rule_kind
class ErrorRatio(Rule):
    kind = "error_ratio"

    def __init__(self, *, ratio: float, seconds: int, min_requests: int) -> None:
        self.name = "error_ratio"
        self.severity = "page"
        self.ratio, self.seconds, self.min_requests = ratio, seconds, min_requests
        self.description = f"over {ratio:.0%} of requests failing for {seconds}s (at least {min_requests})"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        w = settings.watch
        return [
            cls(
                ratio=w.error_ratio_max,
                seconds=w.error_ratio_seconds,
                min_requests=w.error_ratio_min_requests,
            )
        ]

    def evaluate(self, obs: Observations) -> Verdict:
        tally = obs.traffic.window(obs.now_s, self.seconds)
        active = tally.total >= self.min_requests and tally.bad_ratio > self.ratio
        return Verdict(
            active=active,
            summary=(
                f"{tally.bad_ratio:.1%} of {tally.total} requests failed in the last {self.seconds}s "
                f"(limit {self.ratio:.0%})"
            ),
            value=round(tally.bad_ratio, 4),
            details={"requests": tally.total, "failures": tally.bad},
        )
