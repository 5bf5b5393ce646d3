import sqlite3

from steadylink.watch.samples import Samples
from steadylink.watch.series import Series

T = 1_800_000_000  # a whole minute


def test_seconds_roll_up_into_minutes_and_a_restart_reloads_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    samples = Samples(tmp_path / "ops.db")
    for at in range(T, T + 180):
        samples.record_probe("redirect", at, ok=at % 60 != 5, latency_ms=float(at % 60))
        samples.record_traffic(at, requests=10, failures=1)
    samples.roll_up(T + 180)
    conn = sqlite3.connect(tmp_path / "ops.db")
    rows = conn.execute("SELECT at_min, total, ok, p99_ms FROM probe_minutes ORDER BY at_min").fetchall()
    assert rows == [(T, 60, 59, 59.0), (T + 60, 60, 59, 59.0), (T + 120, 60, 59, 59.0)]
    assert samples.bad_probe_seconds("redirect", T, T + 180) == 3
    assert samples.traffic(T, T + 180) == (1800, 180)
    series = Series()
    samples.load_probe("redirect", series, T + 180)
    assert series.window(T + 179, 180).bad == 3
    samples.close()


def test_a_disk_that_refuses_writes_never_raises(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    samples = Samples(tmp_path / "ops.db")
    samples._conn.execute("PRAGMA query_only = 1")  # stands in for a full disk: every write refused
    samples.record_probe("redirect", T, ok=True, latency_ms=1.0)
    samples.record_probe("redirect", T + 1, ok=True, latency_ms=1.0)
    samples.roll_up(T + 120)
    assert capsys.readouterr().err.count("cannot write probe results") == 1
