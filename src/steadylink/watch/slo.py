"""The error budget: how much failure the availability objective allows, and how fast it burns.

With an objective of 99.996 % a year the budget is 0.004 % of the year, about
21 minutes (1,261 s); over any 30 days it is about 104 s. Two counts spend it:

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

from steadylink.settings import SloSettings

DAY = 86_400


@dataclass(frozen=True)
class Objective:
    availability_percent: float = 99.996
    period_days: int = 365

    @classmethod
    def of(cls, slo: SloSettings) -> Objective:
        return cls(slo.availability_percent, slo.period_days)

    @property
    def allowed_ratio(self) -> float:
        return 1.0 - self.availability_percent / 100.0

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
