"""PagerDuty Events API v2, spoken directly with httpx.

Apprise's PagerDuty plugin can only trigger, and the ``pagerduty`` package
would add a dependency for one POST; the payload is small and documented:
``trigger`` carries ``payload`` (summary, source, severity, component, group,
class, custom_details) and ``links``; ``acknowledge`` and ``resolve`` carry only
the ``dedup_key``. One alert keeps one ``dedup_key`` from trigger to resolve, so
PagerDuty deduplicates repeats into one incident.

Answers: 202 accepted; 400 means the event is malformed (not retried); 429
and 5xx are retried by the dispatcher with backoff. Pages only: tickets go to
the Apprise channels.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from steadylink import __version__
from steadylink.errors import ConfigError
from steadylink.notify.base import Channel, DeliveryFailed, Notice, channel_kind
from steadylink.settings import Settings

SEVERITY = {"page": "critical", "ticket": "warning"}


class PagerDuty(Channel):
    kind = "pagerduty"

    def __init__(self, *, routing_key: str, events_url: str, timeout: float) -> None:
        self.name = "pagerduty"
        self.routing_key = routing_key
        self.events_url = events_url
        self.timeout = timeout

    def wants(self, notice: Notice) -> bool:
        return notice.severity == "page" and not notice.escalation

    def payload(self, notice: Notice) -> dict[str, Any]:
        event: dict[str, Any] = {
            "routing_key": self.routing_key,
            "event_action": notice.action,
            "dedup_key": notice.dedup_key,
        }
        if notice.action == "trigger":
            event["payload"] = {
                "summary": notice.summary[:1024],
                "source": notice.source,
                "severity": SEVERITY.get(notice.severity, "error"),
                "component": "front door",
                "group": "steadylink",
                "class": notice.rule,
                "custom_details": {"alert_id": notice.alert_id, **notice.details},
            }
            event["links"] = [{"href": notice.status_url, "text": "steadylink guard status"}]
            event["client"] = f"steadylink guard {__version__}"
            event["client_url"] = notice.status_url
        return event

    def deliver(self, notice: Notice) -> None:
        try:
            response = httpx.post(self.events_url, json=self.payload(notice), timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"PagerDuty did not answer ({type(exc).__name__})") from exc
        if response.status_code in (200, 201, 202):
            return
        retry = response.status_code == 429 or response.status_code >= 500
        raise DeliveryFailed(f"PagerDuty answered {response.status_code}", retry=retry)


@channel_kind("pagerduty")
def from_settings(settings: Settings) -> list[Channel]:
    notify = settings.notify
    if not notify.pagerduty_routing_key:
        return []
    url = urlsplit(notify.pagerduty_events_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(
            f"notify.pagerduty_events_url {notify.pagerduty_events_url!r} is not an http(s) URL."
        )
    if not notify.pagerduty_routing_key.strip() or len(notify.pagerduty_routing_key) > 64:
        raise ConfigError("notify.pagerduty_routing_key must be PagerDuty's 32-character integration key.")
    return [
        PagerDuty(
            routing_key=notify.pagerduty_routing_key.strip(),
            events_url=notify.pagerduty_events_url,
            timeout=notify.timeout_seconds,
        )
    ]
