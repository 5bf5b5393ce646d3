"""Telling status-page subscribers: every public update goes to each ``[status] subscribers`` URL.

``Subscribers`` is the seam (tests pass a list that records what it was told);
``AppriseSubscribers`` sends through Apprise (e-mail, chat, webhooks) on a
thread of its own, so an API call that made the update never waits on a mail
server, and records ``notify.sent`` / ``notify.failed`` in the journal.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from steadylink.watch.journal import Journal

SEND_TIMEOUT_SECONDS = 15


class Subscribers(Protocol):
    def tell(self, title: str, body: str) -> None:
        """Send one public update to every subscriber; never raises, never blocks for long."""
        ...


class NoSubscribers:
    def tell(self, title: str, body: str) -> None:
        return None


class AppriseSubscribers:
    def __init__(self, urls: Sequence[str], *, journal: Journal | None = None) -> None:
        self.urls = tuple(urls)
        self.journal = journal

    def tell(self, title: str, body: str) -> None:
        if self.urls:
            threading.Thread(
                target=self._send, args=(title, body), name="status-subscribers", daemon=True
            ).start()

    def _send(self, title: str, body: str) -> None:
        import apprise  # imported here: it loads every plugin, ~0.3 s, only when there is news

        for number, url in enumerate(self.urls, start=1):
            # Each subscriber on its own, so one broken URL does not silence the others; the
            # URL itself may hold a password, so the journal names it by its number only.
            channel = f"status subscriber {number}"
            sender = apprise.Apprise()
            asset_ok = sender.add(url)
            try:
                ok = bool(asset_ok) and bool(sender.notify(title=title, body=body))
                error = None if ok else "refused or unreachable"
            except Exception as exc:  # a plugin's bug must not stop the others
                ok, error = False, type(exc).__name__
            if self.journal is not None:
                kind = "notify.sent" if ok else "notify.failed"
                body_json = {"channel": channel, "alert_id": None, "attempt": 1}
                if error:
                    body_json["error"] = error
                self.journal.append(
                    kind,
                    f"status update to {channel}: {'sent' if ok else 'failed'}",
                    severity="info" if ok else "warning",
                    body=body_json,
                )
