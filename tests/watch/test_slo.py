"""The error budget is the contract's: 20 minutes a year unless a setting says otherwise."""

from __future__ import annotations

import pytest

from steadylink.settings import SloSettings
from steadylink.watch.slo import Objective, month_budget, year_budget


def test_the_default_budget_is_exactly_twenty_minutes_a_year() -> None:
    objective = Objective.of(SloSettings())
    assert year_budget(objective, 0).to_json()["allowed_minutes"] == 20.0
    assert objective.budget_seconds(365) == pytest.approx(1200.0, abs=1e-9)
    assert objective.availability_percent == pytest.approx(99.9961948, abs=1e-7)
    assert month_budget(objective, 0).allowed_seconds == pytest.approx(1200 * 30 / 365)


def test_a_budget_in_minutes_or_an_availability_percentage_defines_the_objective() -> None:
    assert Objective.of(SloSettings(budget_minutes_per_year=60.0)).budget_minutes_per_year == pytest.approx(60)
    four_nines = Objective.of(SloSettings(availability_percent=99.99))
    assert year_budget(four_nines, 0).to_json()["allowed_minutes"] == 52.56
    assert four_nines.allowed_ratio == pytest.approx(0.0001)
