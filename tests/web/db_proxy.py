"""A TCP proxy in front of the real PostgreSQL server, which a test can cut.

``cut()`` closes every connection it carries and stops listening, so the app
meets a database that went away mid-connection (its pooled connections) and
one that refuses new ones — the real driver's errors, with their SQL, bound
parameters and host:port, not a fake's.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class DatabaseProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._is_cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._is_cut:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._is_cut = True
            sockets, self._sockets = self._sockets, []
        self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def proxied(target: tuple[str, int]) -> Iterator[DatabaseProxy]:
    proxy = DatabaseProxy(target)
    try:
        yield proxy
    finally:
        proxy.cut()
