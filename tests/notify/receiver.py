"""A local HTTP receiver standing in for PagerDuty's Events API and Apprise's json:// webhooks:
it records every JSON body it is sent and answers with a status the test chooses."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.edge.edge_harness import free_port


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.bodies: list[tuple[float, str, dict[str, Any]]] = []  # (monotonic time, path, body)
        self.status = 202
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                time.sleep(receiver.delay)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"raw": raw.decode(errors="replace")}
                receiver.bodies.append((time.monotonic(), self.path, body))
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"status":"success","message":"Event processed"}')
                except OSError:
                    pass  # the sender gave up waiting (the timeout tests)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def on(self, path: str) -> list[dict[str, Any]]:
        return [body for _, p, body in self.bodies if p.startswith(path)]
