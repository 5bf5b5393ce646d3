import pytest
from tests.watch.sim import Sim

from steadylink.settings import Settings
from steadylink.watch.rules.burn_rate import BurnRate
from steadylink.watch.slo import Objective


def rules_by_name() -> dict[str, BurnRate]:
    return {r.name: r for r in BurnRate.from_settings(Settings())}  # type: ignore[misc]


def test_the_workbook_factors_rescaled_to_a_yearly_budget() -> None:
    rules = rules_by_name()
    assert rules["burn_probes_1h"].factor == pytest.approx(0.02 * 365 * 24)  # 175.2x
    assert rules["burn_probes_6h"].factor == pytest.approx(0.05 * 365 * 4)  # 73x
    assert rules["burn_probes_3d"].factor == pytest.approx(0.10 * 365 / 3)  # 12.2x
    assert rules["burn_probes_3d"].severity == "ticket"
    # on a 30-day period the same shares give the workbook's own numbers
    month = Objective.from_percent(99.996, 30)
    assert month.budget_share_factor(0.02, 3600) == pytest.approx(14.4)
    assert month.budget_share_factor(0.05, 6 * 3600) == pytest.approx(6)
    assert month.budget_share_factor(0.10, 3 * 86_400) == pytest.approx(1)


def test_probes_page_at_the_window_edge_24_bad_seconds_in_an_hour_and_not_23() -> None:
    # 2 % of a 20-minute year is 24 s exactly: 23 bad seconds stay under, the 24th pages
    only = {"burn_probes_1h"}
    sim = Sim()
    sim.run(3000, only=only)
    for _ in range(23):
        sim.run(9, only=only)
        sim.second(probe_ok=False, only=only)
    assert sim.fired("burn_probes_1h") == []
    sim.run(9, only=only)
    sim.second(probe_ok=False, only=only)
    assert sim.fired("burn_probes_1h") == [sim.now_s]


def test_a_fresh_guard_with_a_few_seconds_of_data_is_not_a_full_hour() -> None:
    only = {"burn_probes_1h", "burn_probes_6h", "burn_probes_3d"}
    sim = Sim()
    sim.run(10, only=only)
    sim.run(20, probe_ok=False, only=only)
    assert sim.pages() == []


def test_requests_at_low_traffic_one_stray_error_never_pages() -> None:
    sim = Sim()
    only = {"burn_requests_1h", "burn_requests_6h", "error_ratio"}
    for i in range(3600):
        sim.second(requests=1, failures=1 if i == 1800 else 0, only=only)
    assert sim.pages() == []


def test_requests_page_when_both_windows_burn_and_resolve_when_the_short_one_stops() -> None:
    only = {"burn_requests_1h"}
    sim = Sim()
    sim.run(3000, requests=50, only=only)
    sim.run(120, requests=50, failures=25, only=only)  # half failing: 0.67 % of the hour (2 % of 20 min) after ~41 s
    fired = sim.fired("burn_requests_1h")
    assert fired == [sim.now_s - 120 + 41]
    recovered = sim.now_s
    sim.run(400, requests=50, only=only)
    # the 5-minute window stops burning when the failures leave it (+3 s quiet)
    [resolved] = sim.resolved("burn_requests_1h")
    assert 290 <= resolved - recovered <= 303
