"""Apprise URLs (chat, e-mail, ``json://`` webhooks) through the ``apprise`` library.

Each configured URL is its own channel, so one slow or failing service is
retried alone and never holds up the others. ``apprise_urls`` get every
notice; ``escalation_urls`` only the escalations of pages nobody
acknowledged. A URL apprise cannot parse is refused at start-up, naming the
setting and its position (never echoing the URL: it often holds a token).
"""

from __future__ import annotations

import apprise

from steadylink.errors import ConfigError
from steadylink.notify.base import Channel, DeliveryFailed, Notice, channel_kind
from steadylink.settings import Settings


class AppriseUrl(Channel):
    kind = "apprise"

    def __init__(self, url: str, *, name: str, escalation: bool, timeout: float) -> None:
        self.name = name
        self.escalation = escalation
        self._apprise = apprise.Apprise()
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is None:
            raise ValueError(url)
        # apprise's plugins take their socket timeouts from these attributes
        plugin.socket_connect_timeout = timeout
        plugin.socket_read_timeout = timeout
        self._apprise.add(plugin)

    def wants(self, notice: Notice) -> bool:
        return notice.escalation == self.escalation

    def deliver(self, notice: Notice) -> None:
        details = "".join(f"\n{k}: {v}" for k, v in notice.details.items())
        body = f"{notice.summary}\nalert {notice.alert_id} ({notice.severity}){details}\n{notice.status_url}"
        notify_type = {
            "trigger": apprise.NotifyType.FAILURE,
            "acknowledge": apprise.NotifyType.INFO,
            "resolve": apprise.NotifyType.SUCCESS,
        }[notice.action]
        if not self._apprise.notify(title=notice.title, body=body, notify_type=notify_type):
            raise DeliveryFailed(f"{self.name} did not take the message")


def _channels(settings: Settings, key: str, urls: tuple[str, ...], *, escalation: bool) -> list[Channel]:
    channels: list[Channel] = []
    for n, url in enumerate(urls, start=1):
        try:
            channels.append(
                AppriseUrl(url, name=f"{key}[{n}]", escalation=escalation,
                           timeout=settings.notify.timeout_seconds)
            )  # fmt: skip
        except (ValueError, TypeError):
            raise ConfigError(
                f"notify.{key} entry {n} is not a URL Apprise understands; "
                "see https://github.com/caronc/apprise/wiki for the forms."
            ) from None
    return channels


@channel_kind("apprise")
def from_settings(settings: Settings) -> list[Channel]:
    return _channels(settings, "apprise_urls", settings.notify.apprise_urls, escalation=False) + _channels(
        settings, "escalation_urls", settings.notify.escalation_urls, escalation=True
    )
