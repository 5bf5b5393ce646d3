from tests.watch.sim import Sim

ONLY = {"front_door_down"}


def test_fires_at_the_third_failed_second_and_resolves_after_three_quiet_seconds() -> None:
    sim = Sim()
    sim.run(60, only=ONLY)
    start = sim.now_s
    sim.run(2, probe_ok=False, only=ONLY)
    assert sim.fired("front_door_down") == []
    sim.second(probe_ok=False, only=ONLY)
    assert sim.fired("front_door_down") == [start + 3]
    sim.run(17, probe_ok=False, only=ONLY)
    last_failed = sim.now_s
    sim.run(3, only=ONLY)  # the first good second starts the quiet time
    assert sim.resolved("front_door_down") == []
    sim.run(1, only=ONLY)
    assert sim.resolved("front_door_down") == [last_failed + 4]


def test_two_failed_seconds_between_good_ones_never_page() -> None:
    sim = Sim()
    for _ in range(20):
        sim.run(2, probe_ok=False, only=ONLY)
        sim.run(1, only=ONLY)
    assert sim.fired("front_door_down") == []


def test_the_probe_still_in_flight_does_not_break_the_run() -> None:
    # a failing probe's result lands up to a timeout after its second began, so the
    # rules often look when the current second has no result yet
    sim = Sim()
    sim.run(2, probe_ok=False, only=ONLY)
    sim.second(probe_ok=False, only=set())  # the third result is filed; no rule looked yet
    sim.second(probe_ok=None, only=ONLY)  # they look one second on: its probe is in flight
    assert sim.fired("front_door_down") == [sim.now_s]
    sim.run(6, probe_ok=None, only=ONLY)  # from the third second with no result on it is a gap
    assert sim.resolved("front_door_down")


def test_a_gap_breaks_the_run() -> None:
    sim = Sim()
    sim.run(2, probe_ok=False, only=ONLY)
    sim.second(probe_ok=None, only=ONLY)
    sim.run(2, probe_ok=False, only=ONLY)
    assert sim.fired("front_door_down") == []
