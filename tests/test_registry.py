import pytest

from steadylink.notify.base import CHANNEL_KINDS
from steadylink.registry import Registry
from steadylink.watch.probes import PROBE_KINDS
from steadylink.watch.rules import RULE_KINDS


def test_a_second_entry_under_one_name_is_refused() -> None:
    registry: Registry[int] = Registry("thing")
    registry.register("a", 1)
    with pytest.raises(RuntimeError, match="thing 'a' is unnamed or registered twice"):
        registry.register("a", 2)
    with pytest.raises(RuntimeError):
        registry.register("", 3)
    assert registry == {"a": 1}


def test_the_watch_registries() -> None:
    from steadylink.notify.base import build_channels
    from steadylink.settings import Settings

    build_channels(Settings())  # imports the channel modules
    assert set(CHANNEL_KINDS) == {"pagerduty", "apprise"}
    assert set(PROBE_KINDS) == {"redirect", "create", "ui"}
    assert set(RULE_KINDS) == {
        "backup_age", "backup_failed", "burn_rate", "database_down", "disk_full", "error_ratio",
        "front_door_down", "loop_lag", "probe_failing", "probes_stale", "redirect_latency",
        "release_rolled_back",
    }  # fmt: skip
