import threading
from typing import Any

from tests.notify.test_pagerduty import notice

from steadylink.notify.base import Channel, DeliveryFailed, Notice
from steadylink.notify.dispatch import Dispatcher


class Flaky(Channel):
    kind = "flaky"

    def __init__(self, failures: int, *, retry: bool = True) -> None:
        self.name = "flaky"
        self.failures = failures
        self.retry = retry
        self.delivered: list[str] = []

    def wants(self, notice: Notice) -> bool:
        return True

    def deliver(self, notice: Notice) -> None:
        if self.failures:
            self.failures -= 1
            raise DeliveryFailed("endpoint said 503", retry=self.retry)
        self.delivered.append(notice.action)


def test_failed_deliveries_are_retried_with_backoff_and_every_attempt_is_an_event() -> None:
    waits: list[float] = []
    events: list[tuple[str, dict[str, Any]]] = []
    channel = Flaky(failures=3)
    dispatcher = Dispatcher(
        [channel], record=lambda kind, message, **kw: events.append((kind, kw["body"])),
        wait=lambda s: bool(waits.append(s)),
    )  # fmt: skip
    dispatcher.deliver_now(channel, notice())
    assert waits == [1.0, 2.0, 4.0]
    assert [k for k, _ in events] == ["notify.retried"] * 3 + ["notify.sent"]
    assert [b["attempt"] for _, b in events] == [1, 2, 3, 4]
    assert channel.delivered == ["trigger"]


def test_it_gives_up_after_max_attempts_or_at_once_when_retrying_cannot_help() -> None:
    events: list[str] = []
    record = lambda kind, message, **kw: events.append(kind)  # noqa: E731
    Dispatcher([], record=record, max_attempts=3, wait=lambda s: False).deliver_now(Flaky(9), notice())
    assert events == ["notify.retried", "notify.retried", "notify.failed"]
    events.clear()
    Dispatcher([], record=record, wait=lambda s: False).deliver_now(Flaky(1, retry=False), notice())
    assert events == ["notify.failed"]


def test_submit_never_blocks_and_a_channel_keeps_its_order() -> None:
    gate = threading.Event()

    class Slow(Flaky):
        def deliver(self, notice: Notice) -> None:
            gate.wait(5)
            super().deliver(notice)

    channel = Slow(0)
    dispatcher = Dispatcher([channel])
    dispatcher.start()
    for action in ("trigger", "acknowledge", "resolve"):
        dispatcher.submit(notice(action))  # returns although the endpoint hangs
    assert channel.delivered == []
    gate.set()
    for _ in range(100):
        if len(channel.delivered) == 3:
            break
        threading.Event().wait(0.02)
    dispatcher.stop()
    assert channel.delivered == ["trigger", "acknowledge", "resolve"]
