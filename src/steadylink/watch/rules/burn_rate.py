"""Multi-window, multi-burn-rate rules (Google SRE workbook), on a yearly budget.

A rule fires when both its long and its short window burn faster than its
factor: the long window proves the burn is big enough to matter, the short
one that it is still going on (so the alert resolves soon after the burn
stops). The workbook's factors for a 30-day budget, 14.4x over 1 h (and
5 m), 6x over 6 h (30 m) and 1x over 3 days (6 h), mean that 2 %, 5 % and
10 % of the budget went within the long window; the same shares of the
period's budget set the factors here (``Objective.budget_share_factor``:
175x, 73x and 12.2x for a year).

Both counts of the SLO have their rules: probe seconds and requests. For
probes the share is bad seconds over the window's whole length: 25 bad
seconds within an hour page, whether the guard ran all that hour or not. At low
traffic a single failed request is a large ratio, so the request rules also
want ``error_ratio_min_requests`` requests and at least ``MIN_BAD_REQUESTS``
failures in the long window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from steadylink.settings import Settings
from steadylink.watch.rules.base import Observations, Rule, Severity, Verdict, rule_kind
from steadylink.watch.series import Series, Tally
from steadylink.watch.slo import Objective

MIN_BAD_REQUESTS = 3
Signal = Literal["probes", "requests"]

# (budget share, long window, short window, severity): the workbook's three rules
WORKBOOK: tuple[tuple[float, int, int, Severity], ...] = (
    (0.02, 3600, 300, "page"),
    (0.05, 6 * 3600, 1800, "page"),
    (0.10, 3 * 86_400, 6 * 3600, "ticket"),
)


def _span(seconds: int) -> str:
    return f"{seconds // 86_400}d" if seconds >= 86_400 else (
        f"{seconds // 3600}h" if seconds >= 3600 else f"{seconds // 60}m"
    )  # fmt: skip


def _reaches(burn: float, factor: float) -> bool:
    """``burn >= factor``, where spending exactly the share counts: 24 bad seconds are 2 % of
    a 20-minute budget, and float rounding must not decide whether that pages."""
    return burn >= factor * (1 - 1e-9)


@rule_kind
@dataclass
class BurnRate(Rule):
    kind = "burn_rate"
    name: str
    severity: Severity
    signal: Signal
    share: float
    long_s: int
    short_s: int
    objective: Objective
    min_requests: int = 1
    description: str = ""

    @property
    def factor(self) -> float:
        return self.objective.budget_share_factor(self.share, self.long_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> list[Rule]:
        objective = Objective.of(settings.slo)
        return [
            cls(
                name=f"burn_{signal}_{_span(long_s)}",
                severity=severity,
                signal=signal,
                share=share,
                long_s=long_s,
                short_s=short_s,
                objective=objective,
                min_requests=settings.watch.error_ratio_min_requests,
                description=f"{share:.0%} of the error budget ({signal}) spent within {_span(long_s)}",
            )
            for share, long_s, short_s, severity in WORKBOOK
            for signal in ("probes", "requests")
        ]

    def evaluate(self, obs: Observations) -> Verdict:
        series: Series = obs.liveness if self.signal == "probes" else obs.traffic
        long, short = series.window(obs.now_s, self.long_s), series.window(obs.now_s, self.short_s)
        burn_long = self.objective.burn_rate(self._bad_ratio(long, self.long_s))
        burn_short = self.objective.burn_rate(self._bad_ratio(short, self.short_s))
        active = _reaches(burn_long, self.factor) and _reaches(burn_short, self.factor) and self._enough(long)
        return Verdict(
            active=active,
            summary=(
                f"error budget ({self.signal}) burning {burn_long:.0f}x over {_span(self.long_s)} "
                f"and {burn_short:.0f}x over {_span(self.short_s)} (limit {self.factor:.1f}x)"
            ),
            value=round(burn_long, 2),
            details={"burn_long": round(burn_long, 2), "burn_short": round(burn_short, 2),
                     "factor": round(self.factor, 2), "bad": long.bad, "total": long.total},
        )  # fmt: skip

    def _bad_ratio(self, tally: Tally, window_s: int) -> float:
        """Probes: bad seconds over the window's length, so a guard that started a minute ago
        (or a gap in the data) neither inflates nor dilutes the budget spent in the window."""
        if self.signal == "probes":
            return tally.bad / window_s
        return tally.bad_ratio

    def _enough(self, long: Tally) -> bool:
        if self.signal == "probes":
            return long.bad >= 1
        return long.total >= self.min_requests and long.bad >= MIN_BAD_REQUESTS
