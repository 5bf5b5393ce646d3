"""Deliveries on threads of their own, in order per channel, retried with backoff.

``Dispatcher.submit`` only puts the notice on each interested channel's queue
and returns: a slow or unreachable endpoint never holds up probes, alert
evaluation or a deploy. Each channel has one thread that delivers its queue in
order (a PagerDuty resolve never overtakes its trigger); a failed attempt is
retried after 1, 2, 4 … seconds (at most ``BACKOFF_MAX``), ``max_attempts`` in
all, then dropped. Every attempt is a journal event: ``notify.sent``,
``notify.retried`` (a failed attempt that will be tried again) or
``notify.failed`` (given up).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from steadylink.notify.base import Channel, DeliveryFailed, Notice

BACKOFF_MAX = 60.0
Record = Callable[..., Any]  # Journal.append


@dataclass(frozen=True)
class Attempt:
    channel: str
    notice: Notice
    attempt: int
    ok: bool
    error: str | None = None
    final: bool = True


class _Lane:
    def __init__(self, channel: Channel, dispatcher: Dispatcher) -> None:
        self.channel = channel
        self.queue: queue.Queue[Notice | None] = queue.Queue(maxsize=10_000)
        self.thread = threading.Thread(
            target=dispatcher._run_lane, args=(self,), name=f"notify-{channel.name}", daemon=True
        )


class Dispatcher:
    def __init__(
        self,
        channels: list[Channel],
        *,
        record: Record | None = None,
        max_attempts: int = 8,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.max_attempts = max_attempts
        self._record = record
        self._stop = threading.Event()
        # ``wait(seconds)`` returns True when stopping; tests pass one that does not sleep
        self._wait = wait or self._stop.wait
        self._lanes = [_Lane(c, self) for c in channels]
        self.attempts: list[Attempt] = []

    @property
    def channels(self) -> list[Channel]:
        return [lane.channel for lane in self._lanes]

    def start(self) -> None:
        for lane in self._lanes:
            lane.thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for lane in self._lanes:
            with contextlib.suppress(queue.Full):
                lane.queue.put_nowait(None)
        for lane in self._lanes:
            if lane.thread.is_alive():
                lane.thread.join(timeout)

    def submit(self, notice: Notice) -> None:
        for lane in self._lanes:
            if lane.channel.wants(notice):
                try:
                    lane.queue.put_nowait(notice)
                except queue.Full:
                    self._note(Attempt(lane.channel.name, notice, 0, False, "queue full"))

    def deliver_now(self, channel: Channel, notice: Notice) -> None:
        """Deliver one notice with retries on the calling thread (the lanes, and tests)."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                channel.deliver(notice)
            except DeliveryFailed as exc:
                final = not exc.retry or attempt == self.max_attempts
                self._note(Attempt(channel.name, notice, attempt, False, str(exc), final))
                if final or self._wait(min(BACKOFF_MAX, 2.0 ** (attempt - 1))):
                    return
                continue
            except Exception as exc:  # a channel's bug: one line, no retry storm
                self._note(Attempt(channel.name, notice, attempt, False, type(exc).__name__, True))
                return
            self._note(Attempt(channel.name, notice, attempt, True))
            return

    def _run_lane(self, lane: _Lane) -> None:
        while not self._stop.is_set():
            notice = lane.queue.get()
            if notice is None:
                return
            self.deliver_now(lane.channel, notice)

    def _note(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        del self.attempts[:-1000]
        if self._record is None:
            return
        n = attempt.notice
        body = {"channel": attempt.channel, "alert_id": n.alert_id, "attempt": attempt.attempt,
                "action": n.action}  # fmt: skip
        if attempt.ok:
            self._record("notify.sent", f"{n.action} {n.rule} sent to {attempt.channel}", body=body)
            return
        body["error"] = attempt.error
        kind = "notify.failed" if attempt.final else "notify.retried"
        verb = "gave up on" if attempt.final else "will retry"
        self._record(
            kind, f"{verb} {n.action} {n.rule} to {attempt.channel}: {attempt.error}",
            severity="error" if attempt.final else "warning", body=body,
        )  # fmt: skip
