"""Status-page subscribers through Apprise: a JSON webhook receives each public update."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from steadylink.incidents.subscribers import AppriseSubscribers
from steadylink.watch.journal import Journal


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"json://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_each_subscriber_is_told_and_the_outcome_journalled(webhook: str, tmp_path: Path) -> None:
    journal = Journal.for_data_dir(tmp_path)
    subscribers = AppriseSubscribers([webhook, "json://127.0.0.1:9/closed"], journal=journal)
    subscribers._send("short.example: Service disruption (identified)", "We found the cause.")
    assert [(m["title"], m["message"]) for m in _Hook.received] == [
        ("short.example: Service disruption (identified)", "We found the cause.")
    ]
    outcomes = [(e.kind, e.body["channel"]) for e in journal.read(kinds=["notify"])]
    assert outcomes == [("notify.sent", "status subscriber 1"), ("notify.failed", "status subscriber 2")]
    assert "127.0.0.1" not in str(journal.read())  # URLs may hold passwords: never journalled
    journal.close()
