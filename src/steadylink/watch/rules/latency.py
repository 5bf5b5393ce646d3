"""Redirects slower than the latency objective, over a minute of liveness probes.

The objective says ``latency_percent`` of redirects are faster than
``redirect_latency_ms``; the rule fires when more than the allowed share of
the window's probes were slower, and at least ``MIN_SLOW`` of them (at one
probe a second, a single slow probe is over 1 % of a minute: a pause of the
machine is not a trend). A ticket, not a page: slow is not down, and the
availability rules page when slow turns into timeouts.
"""

from __future__ import annotations

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Verdict, rule_kind
from steadylink.watch.samples import p99

MIN_SLOW = 3


@rule_kind
class RedirectLatency(Rule):
    kind = "redirect_latency"

    def __init__(self, *, objective_ms: float, percent: float, seconds: int) -> None:
        self.name = "redirect_latency"
        self.severity = "ticket"
        self.objective_ms, self.percent, self.seconds = objective_ms, percent, seconds
        self.description = f"p{percent:g} of redirects over {objective_ms:g} ms for {seconds}s"

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        return [
            cls(
                objective_ms=settings.slo.redirect_latency_ms,
                percent=settings.slo.latency_percent,
                seconds=settings.watch.latency_window_seconds,
            )
        ]

    def evaluate(self, obs: Observations) -> Verdict:
        samples = list(obs.latencies_ms)
        slow = sum(1 for ms in samples if ms > self.objective_ms)
        allowed = (100.0 - self.percent) / 100.0 * len(samples)
        enough = len(samples) >= self.seconds // 2
        high = p99(samples)
        return Verdict(
            active=enough and slow > allowed and slow >= MIN_SLOW,
            summary=(
                f"{slow} of {len(samples)} redirects slower than {self.objective_ms:g} ms "
                f"in the last {self.seconds}s (p99 {high or 0:.0f} ms)"
            ),
            value=high,
        )
