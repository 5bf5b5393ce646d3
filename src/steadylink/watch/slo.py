"""The error budget: how much failure the availability objective allows, and how fast it burns.

The budget is what a contract states: minutes of failure a year (20 by default,
``slo.budget_minutes_per_year``; 99.9962 % of the year), or an availability
percentage instead (``slo.availability_percent``). Over any 30 days 20 minutes
a year is about 99 s. Two counts spend it:

* time-based: a second whose liveness probe failed is a bad second;
* request-based: a request that got a 5xx, a connection error or a timeout at
  the front door is a bad request, over all requests.

The burn rate over a window is its bad share divided by the allowed share:
1x spends exactly the budget over the period, 14.4x would spend a 30-day budget
in about two days. The burn-rate alert rules (``watch/rules/burn_rate.py``)
follow the multi-window, multi-burn-rate recipe of Google's SRE workbook; its
factors (14.4x, 6x, 1x) are for a 30-day budget and mean "2 %, 5 % and 10 % of
the budget spent within 1 h, 6 h and 3 days". The same shares of a yearly
budget give factors of 175x, 73x and 12.2x (``budget_share_factor``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from steadylink.settings import DEFAULT_BUDGET_MINUTES, SloSettings

DAY = 86_400
YEAR_SECONDS = 365 * DAY


@dataclass(frozen=True)
class Objective:
    """The share of time (and of requests) allowed to fail; the budget is kept as that share,
    so 20 minutes a year stays exactly 20 minutes rather than a rounded percentage."""

    allowed_ratio: float = DEFAULT_BUDGET_MINUTES * 60 / YEAR_SECONDS
    period_days: int = 365

    @classmethod
    def of(cls, slo: SloSettings) -> Objective:
        if slo.availability_percent is not None:
            return cls.from_percent(slo.availability_percent, slo.period_days)
        return cls(slo.budget_minutes_per_year * 60 / YEAR_SECONDS, slo.period_days)

    @classmethod
    def from_percent(cls, availability_percent: float, period_days: int = 365) -> Objective:
        return cls(1.0 - availability_percent / 100.0, period_days)

    @property
    def availability_percent(self) -> float:
        return 100.0 * (1.0 - self.allowed_ratio)

    @property
    def budget_minutes_per_year(self) -> float:
        return self.allowed_ratio * YEAR_SECONDS / 60

    @property
    def period_seconds(self) -> int:
        return self.period_days * DAY

    def budget_seconds(self, days: float | None = None) -> float:
        """Bad seconds allowed over ``days`` (default: the whole period)."""
        span = self.period_seconds if days is None else days * DAY
        return span * self.allowed_ratio

    def burn_rate(self, bad_ratio: float) -> float:
        return bad_ratio / self.allowed_ratio

    def budget_share_factor(self, share: float, window_seconds: int) -> float:
        """The burn rate that spends ``share`` of the period's budget within ``window_seconds``."""
        return share * self.period_seconds / window_seconds


@dataclass(frozen=True)
class Budget:
    """What is left of a budget: allowed and spent bad seconds over a span."""

    span: str
    allowed_seconds: float
    spent_seconds: float

    @property
    def left_seconds(self) -> float:
        return self.allowed_seconds - self.spent_seconds

    @property
    def left_percent(self) -> float:
        if self.allowed_seconds <= 0:
            return 0.0
        return 100.0 * self.left_seconds / self.allowed_seconds

    def to_json(self) -> dict[str, object]:
        return {
            "span": self.span,
            "allowed_minutes": round(self.allowed_seconds / 60, 2),
            "spent_minutes": round(self.spent_seconds / 60, 2),
            "left_minutes": round(self.left_seconds / 60, 2),
            "left_percent": round(self.left_percent, 2),
        }


def year_budget(objective: Objective, spent_seconds: float) -> Budget:
    """This calendar year's budget: the yearly allowance (a contract's year, not a rolling one)."""
    return Budget("this year", objective.budget_seconds(365), spent_seconds)


def month_budget(objective: Objective, spent_seconds: float) -> Budget:
    return Budget("last 30 days", objective.budget_seconds(30), spent_seconds)


def start_of_year(now: datetime) -> datetime:
    return datetime(now.astimezone(UTC).year, 1, 1, tzinfo=UTC)
