from dataclasses import replace

from tests.watch.sim import Sim

from steadylink.settings import Settings

ONLY = {"create_probe_failing", "ui_probe_failing"}


def every_ten_seconds(sim: Sim, results: list[dict[str, bool]]) -> list[int]:
    """One probe run every 10 s (as the guard runs create and ui); the seconds they came at."""
    at = []
    for result in results:
        sim.run(9, only=ONLY)
        sim.second(only=ONLY, results=result)
        at.append(sim.now_s)
    return at


def test_the_create_transaction_pages_at_its_second_failed_run_and_resolves_at_the_first_good_one() -> None:
    sim = Sim()
    ok, failed = {"create": True}, {"create": False}
    at = every_ten_seconds(sim, [ok, ok, failed])
    assert sim.fired("create_probe_failing") == []
    at += every_ten_seconds(sim, [failed])
    assert sim.fired("create_probe_failing") == [at[3]]
    assert sim.pages() == [(at[3], "create_probe_failing")]
    at += every_ten_seconds(sim, [failed, failed])
    assert sim.resolved("create_probe_failing") == []
    at += every_ten_seconds(sim, [ok])
    assert sim.resolved("create_probe_failing") == [at[6]]


def test_the_ui_probe_pages_on_its_own_and_one_failed_run_between_good_ones_never_does() -> None:
    sim = Sim()
    every_ten_seconds(sim, [{"ui": False, "create": True}, {"ui": True, "create": True}] * 5)
    assert sim.pages() == []
    at = every_ten_seconds(sim, [{"ui": False}, {"ui": False}])
    assert sim.pages() == [(at[1], "ui_probe_failing")]


def test_a_canary_sockets_failures_never_page_for_production() -> None:
    sim = Sim()
    every_ten_seconds(sim, [{"create@canary": False, "ui@canary": False, "create": True, "ui": True}] * 6)
    assert sim.probes["create@canary"].failed_runs == 6
    assert sim.pages() == []


def test_the_number_of_runs_is_a_setting() -> None:
    settings = Settings()
    sim = Sim(settings=replace(settings, watch=replace(settings.watch, create_probe_failed_runs=3)))
    at = every_ten_seconds(sim, [{"create": False}] * 3)
    assert sim.fired("create_probe_failing") == [at[2]]
    assert sim.rules["create_probe_failing"].description == "the create probe failed 3 runs in a row"
