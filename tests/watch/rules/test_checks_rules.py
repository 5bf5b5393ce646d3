"""The rules over readings: disk, database, backup age and failures, loop lag, and the rollback rule."""

from tests.watch.sim import Sim

from steadylink.watch.rules import RollbackSeen


def test_disk_over_90_percent_pages_after_ten_seconds() -> None:
    sim = Sim()
    sim.with_readings(disk_used_percent=95.0)
    sim.run(9, only={"disk_full"})
    assert sim.fired("disk_full") == []
    sim.run(2, only={"disk_full"})
    assert len(sim.fired("disk_full")) == 1


def test_the_database_must_fail_two_checks_in_a_row() -> None:
    sim = Sim()
    sim.with_readings(database_ok=False, database_error="no answer within 2s")
    sim.run(4, only={"database_down"})
    assert sim.fired("database_down") == []
    sim.run(2, only={"database_down"})
    assert sim.fired("database_down")
    sim.with_readings(database_ok=True)
    sim.run(4, only={"database_down"})
    assert sim.resolved("database_down")


def test_an_old_backup_is_a_ticket() -> None:
    sim = Sim()
    sim.with_readings(backup_age_seconds=25 * 3600)
    sim.run(1, only={"backup_age"})
    assert sim.fired("backup_age") and sim.pages() == []


def test_a_failed_backup_attempt_is_a_ticket_at_once_though_the_last_good_one_is_recent() -> None:
    sim = Sim()
    only = {"backup_failed", "backup_age"}
    sim.with_readings(backup_age_seconds=3600, backup_failed_reason="The backup could not be written to /mnt/b: its disk is full.",
                      backup_failed_at=float(sim.now_s))  # fmt: skip
    sim.run(1, only=only)
    assert sim.fired("backup_failed") == [sim.now_s] and sim.fired("backup_age") == []
    [(_, firing)] = [(at, c) for at, c in sim.changes if c.kind == "firing"]
    assert firing.alert.severity == "ticket" and "its disk is full" in firing.alert.summary
    sim.with_readings(backup_failed_reason=None, backup_failed_at=None)  # a backup succeeded
    sim.run(3, only=only)  # the quiet seconds every rule waits before it resolves
    assert sim.resolved("backup_failed") == []
    sim.run(1, only=only)
    assert sim.resolved("backup_failed") == [sim.now_s]


def test_an_automatic_rollback_after_users_pages_and_clears_after_ten_minutes() -> None:
    sim = Sim()
    sim.run(5, only={"release_rolled_back"})
    sim.rollbacks.append(RollbackSeen(sim.now_s, "r2", "canary 5xx"))
    sim.run(1, only={"release_rolled_back"})
    assert sim.pages() == [(sim.now_s, "release_rolled_back")]
    sim.run(600, only={"release_rolled_back"})
    assert sim.resolved("release_rolled_back")


def test_loop_lag_is_a_ticket_after_ten_seconds() -> None:
    sim = Sim()
    sim.with_readings(loop_lag_seconds=2.0)
    sim.run(12, only={"loop_lag"})
    assert sim.fired("loop_lag") and sim.pages() == []
