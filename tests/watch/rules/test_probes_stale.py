from tests.watch.sim import Sim

ONLY = {"probes_stale"}


def test_probes_that_stop_reporting_page_after_five_seconds() -> None:
    sim = Sim()
    sim.run(30, only=ONLY)
    stopped = sim.now_s
    sim.run(4, probe_ok=None, only=ONLY)
    assert sim.fired("probes_stale") == []
    sim.second(probe_ok=None, only=ONLY)
    assert sim.fired("probes_stale") == [stopped + 5]
    sim.run(4, only=ONLY)
    assert sim.resolved("probes_stale")
