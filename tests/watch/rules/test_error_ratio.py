from tests.watch.sim import Sim

ONLY = {"error_ratio"}


def test_fires_when_over_5_percent_fail_over_10_seconds() -> None:
    sim = Sim()
    sim.run(30, requests=20, only=ONLY)
    sim.second(requests=20, failures=10, only=ONLY)  # 10 of 200 in the window: 5 %, not over
    assert sim.fired("error_ratio") == []
    sim.second(requests=20, failures=10, only=ONLY)  # 20 of 200: 10 %
    assert sim.fired("error_ratio") == [sim.now_s]


def test_5_percent_exactly_does_not_fire() -> None:
    sim = Sim()
    sim.run(60, requests=20, failures=1, only=ONLY)
    assert sim.fired("error_ratio") == []


def test_too_few_requests_say_nothing() -> None:
    sim = Sim()
    sim.run(60, requests=2, failures=1, only=ONLY)  # 50 % of 20 requests in 10 s < 50
    assert sim.fired("error_ratio") == []


def test_resolves_when_the_window_is_clean_again() -> None:
    sim = Sim()
    sim.run(10, requests=20, failures=20, only=ONLY)
    assert sim.fired("error_ratio")
    recovered = sim.now_s
    sim.run(20, requests=20, only=ONLY)
    # the last failure leaves the 10 s window at +10; three quiet seconds later it resolves
    assert sim.resolved("error_ratio") == [recovered + 13]
