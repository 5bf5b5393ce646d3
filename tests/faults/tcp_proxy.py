"""A TCP proxy a test controls: forwards to a real server until told to stop.

``blackhole()`` is the fault a refused connection is not: connections stay
open and new ones are accepted, but nothing passes in either direction, as
when a database host vanishes behind a router, or its process is stopped.
``restore()`` lets the bytes flow again (what was held goes through).
``close()`` cuts it: every connection it carries is closed and it stops
listening (a database that went away mid-connection, then refuses new ones).
"""

from __future__ import annotations

import select
import socket
import threading
from types import TracebackType

from tests.edge.edge_harness import free_port


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    def blackhole(self) -> None:
        self._forwarding.clear()

    def restore(self) -> None:
        self._forwarding.set()

    def close(self) -> None:
        self._stopped.set()
        self._forwarding.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        pair = {client: upstream, upstream: client}
        try:
            while not self._stopped.is_set():
                if not self._forwarding.wait(0.05):
                    continue  # blackholed: read nothing, send nothing
                readable, _, _ = select.select(list(pair), [], [], 0.05)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()
