"""What a channel is given (``Notice``), what it is (``Channel``), and the registry of kinds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from steadylink.registry import Registry
from steadylink.settings import Settings

Action = Literal["trigger", "acknowledge", "resolve"]


@dataclass(frozen=True)
class Notice:
    """One thing to tell about one alert. ``dedup_key`` is the same for the alert's whole life."""

    action: Action
    alert_id: str
    dedup_key: str
    rule: str
    severity: str  # page | ticket
    summary: str
    source: str  # the guard's front door, e.g. http://127.0.0.1:8080
    status_url: str  # the guard's ops status, linked from the page
    details: dict[str, Any] = field(default_factory=dict)
    escalation: bool = False
    repeat: bool = False  # a reminder of an alert nobody acknowledged

    @property
    def title(self) -> str:
        word = {"trigger": "FIRING", "acknowledge": "ACKNOWLEDGED", "resolve": "RESOLVED"}[self.action]
        return f"[steadylink {word}] {self.rule}"


class DeliveryFailed(Exception):
    """A delivery did not go through; ``retry`` False when trying again cannot help (e.g. a 400)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Channel:
    """One place notices go. ``wants`` says which notices it takes; ``deliver`` raises DeliveryFailed."""

    kind: ClassVar[str] = ""
    name: str = ""

    def wants(self, notice: Notice) -> bool:
        raise NotImplementedError

    def deliver(self, notice: Notice) -> None:
        raise NotImplementedError


ChannelFactory = Callable[[Settings], list[Channel]]
CHANNEL_KINDS: Registry[ChannelFactory] = Registry("channel kind")


def channel_kind(kind: str) -> Callable[[ChannelFactory], ChannelFactory]:
    """Register how a kind of channel is built from the settings; a kind registered twice is a bug."""
    return lambda factory: CHANNEL_KINDS.register(kind, factory)


def build_channels(settings: Settings) -> list[Channel]:
    """Every configured channel; a malformed URL or key fails here, at start-up, naming its key."""
    from steadylink.notify import apprise_urls, pagerduty  # noqa: F401  (they register their kinds)

    channels: list[Channel] = []
    for factory in CHANNEL_KINDS.values():
        channels += factory(settings)
    return channels
