from steadylink.watch.series import Series

T = 1_800_000_000


def test_short_windows_count_seconds_and_gaps_are_not_good_seconds() -> None:
    s = Series()
    for at in range(T, T + 10):
        s.add(at, good=1)
    s.add(T + 12, bad=1)
    tally = s.window(T + 12, 5)
    assert (tally.good, tally.bad, tally.seconds) == (2, 1, 3)


def test_long_windows_sum_minutes() -> None:
    s = Series()
    for at in range(T, T + 7200):
        s.add(at, good=1, bad=int(at % 100 == 0))
    tally = s.window(T + 7199, 3600)
    assert tally.seconds == 3600 and tally.bad == 36


def test_old_seconds_are_dropped_minutes_kept() -> None:
    s = Series(seconds_kept=120, minutes_kept=60)
    for at in range(T, T + 600):
        s.add(at, bad=1)
    assert 120 <= s.window(T + 599, 300).bad < 180  # seconds beyond 120 s go (pruned each minute)
    assert s.window(T + 599, 3600).bad == 600  # minutes still have them
