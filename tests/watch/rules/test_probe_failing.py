from dataclasses import replace

from tests.watch.sim import Sim

from steadylink.settings import Settings

ONLY = {"create_probe_failing", "ui_probe_failing"}


def every_ten_seconds(sim: Sim, results: list[dict[str, bool]], only: set[str] = ONLY) -> list[int]:
    """One probe run every 10 s (as the guard runs create and ui); the seconds they came at."""
    at = []
    for result in results:
        sim.run(9, only=only)
        sim.second(only=only, results=result)
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


def test_runs_failed_with_the_whole_front_door_never_page_again_and_runs_after_it_count() -> None:
    sim = Sim()
    only = ONLY | {"front_door_down"}
    sim.run(9, only=only)
    for _ in range(3):  # the whole front door down: every probe fails
        sim.run(9, probe_ok=False, only=only)
        sim.second(probe_ok=False, only=only, results={"create": False, "ui": False})
    assert [rule for _, rule in sim.pages()] == ["front_door_down"]
    at = every_ten_seconds(sim, [{"create": False, "ui": True}], only)  # redirects work, creating links does not
    assert sim.resolved("front_door_down") and sim.fired("create_probe_failing") == []
    at += every_ten_seconds(sim, [{"create": False, "ui": True}], only)
    assert sim.fired("create_probe_failing") == [at[1]] and sim.fired("ui_probe_failing") == []
    [firing] = [c for _, c in sim.changes if c.kind == "firing" and c.alert.rule == "create_probe_failing"]
    assert "failed 2 runs in a row while redirects worked" in firing.alert.summary
