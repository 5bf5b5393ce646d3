import pytest
from tests.notify.receiver import Receiver

from steadylink.errors import ConfigError
from steadylink.notify.base import DeliveryFailed, Notice, build_channels
from steadylink.notify.pagerduty import PagerDuty
from steadylink.settings import Settings


def notice(action: str = "trigger") -> Notice:
    return Notice(
        action=action,  # type: ignore[arg-type]
        alert_id="front_door_down-1800000003",
        dedup_key="steadylink/front_door_down-1800000003",
        rule="front_door_down",
        severity="page",
        summary="front door failing: the liveness probe failed 3 seconds in a row",
        source="http://127.0.0.1:8080",
        status_url="http://127.0.0.1:8081/ops/v1/status",
        details={"release": "r1", "burn_rate": 2083.0, "probe": "redirect"},
    )


def test_trigger_acknowledge_resolve_reach_the_endpoint_in_events_api_v2_shape() -> None:
    with Receiver() as pd:
        channel = PagerDuty(routing_key="K" * 32, events_url=f"{pd.url}/v2/enqueue", timeout=2)
        for action in ("trigger", "acknowledge", "resolve"):
            channel.deliver(notice(action))
        trigger, ack, resolve = pd.on("/v2/enqueue")
    assert [e["event_action"] for e in (trigger, ack, resolve)] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in (trigger, ack, resolve)} == {"steadylink/front_door_down-1800000003"}
    assert {e["routing_key"] for e in (trigger, ack, resolve)} == {"K" * 32}
    payload = trigger["payload"]
    assert payload["severity"] == "critical"
    assert payload["source"] == "http://127.0.0.1:8080"
    assert payload["summary"].startswith("front door failing")
    assert payload["component"] and payload["class"] == "front_door_down"
    assert payload["custom_details"]["release"] == "r1"
    assert trigger["links"] == [
        {"href": "http://127.0.0.1:8081/ops/v1/status", "text": "steadylink guard status"}
    ]
    assert "payload" not in ack and "payload" not in resolve


def test_a_400_is_not_retried_a_429_and_5xx_are() -> None:
    with Receiver() as pd:
        channel = PagerDuty(routing_key="k", events_url=pd.url, timeout=2)
        for status, retry in ((400, False), (429, True), (503, True)):
            pd.status = status
            with pytest.raises(DeliveryFailed) as failed:
                channel.deliver(notice())
            assert failed.value.retry is retry


def test_an_endpoint_that_does_not_answer_in_time_fails_the_attempt() -> None:
    with Receiver() as pd:
        pd.delay = 1.0
        channel = PagerDuty(routing_key="k", events_url=pd.url, timeout=0.2)
        with pytest.raises(DeliveryFailed, match="did not answer"):
            channel.deliver(notice())


def test_a_malformed_events_url_is_refused_naming_the_key() -> None:
    settings = Settings().with_overrides(notify=Settings().notify.__class__(
        pagerduty_routing_key="k", pagerduty_events_url="events.pagerduty.com/v2"))  # fmt: skip
    with pytest.raises(ConfigError, match="notify.pagerduty_events_url"):
        build_channels(settings)
