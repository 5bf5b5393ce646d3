from tests.watch.sim import Sim

ONLY = {"redirect_latency"}


def test_a_minute_of_slow_redirects_is_a_ticket() -> None:
    sim = Sim()
    sim.run(60, latency_ms=20, only=ONLY)
    sim.run(60, latency_ms=250, only=ONLY)
    assert sim.fired("redirect_latency")
    assert sim.pages() == []


def test_one_or_two_slow_probes_a_minute_do_not_fire() -> None:
    sim = Sim()
    for _ in range(10):
        sim.run(29, latency_ms=20, only=ONLY)
        sim.second(latency_ms=400, only=ONLY)
    assert sim.fired("redirect_latency") == []
