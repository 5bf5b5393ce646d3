import pytest
from tests.notify.receiver import Receiver
from tests.notify.test_pagerduty import notice

from steadylink.errors import ConfigError
from steadylink.notify.base import build_channels
from steadylink.settings import NotifySettings, Settings


def settings_with(**notify: object) -> Settings:
    return Settings().with_overrides(notify=NotifySettings(**notify))  # type: ignore[arg-type]


def test_a_json_url_receives_the_alert() -> None:
    with Receiver() as hook:
        [channel] = build_channels(settings_with(apprise_urls=(f"json://127.0.0.1:{hook.port}/hook",)))
        channel.deliver(notice())
        [body] = hook.on("/hook")
    assert "front_door_down" in body["title"] and "FIRING" in body["title"]
    assert "front door failing" in body["message"]


def test_escalation_urls_only_take_escalations() -> None:
    channels = build_channels(
        settings_with(apprise_urls=("json://a.example/x",), escalation_urls=("json://b.example/y",))
    )
    first, second = channels
    assert first.wants(notice()) and not second.wants(notice())


@pytest.mark.parametrize("key", ["apprise_urls", "escalation_urls"])
def test_a_malformed_url_is_refused_at_start_up_naming_the_key(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"notify.{key} entry 2 ") as refused:
        build_channels(settings_with(**{key: ("json://ok.example/x", "not a url at all")}))
    assert "not a url at all" not in refused.value.message  # URLs often hold tokens
