"""The front door's listening sockets, held by the guard and lent to HAProxy.

HAProxy binds nothing itself when the guard runs it: the guard opens the
plain-HTTP (and TLS) listening sockets once and starts HAProxy with them
inherited (``bind fd@N``). When HAProxy dies — its worker killed, its master
killed, a crash — the sockets stay open in the guard, so clients that connect
meanwhile wait in the kernel's accept queue instead of being refused, and the
HAProxy the guard starts in its place takes them from there. HAProxy's own
reloads keep them too: the master re-executes itself with its inherited file
descriptors. Connections the dead process had already accepted are lost with it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass

from steadylink.errors import Conflict

# The accept queue that holds clients while no HAProxy runs (the kernel caps it at somaxconn).
BACKLOG = 4096


@dataclass
class HeldListeners:
    """Listening sockets, one per port, in the order given; ``fds`` are what HAProxy inherits."""

    sockets: list[socket.socket]

    @classmethod
    def open(cls, host: str, ports: list[int]) -> HeldListeners:
        """Bind and listen on each port; Conflict naming the port when one is taken."""
        opened: list[socket.socket] = []
        try:
            for port in ports:
                opened.append(_listen(host, port))
        except BaseException:
            for held in opened:
                held.close()
            raise
        return cls(opened)

    @property
    def fds(self) -> tuple[int, ...]:
        return tuple(held.fileno() for held in self.sockets)

    def close(self) -> None:
        for held in self.sockets:
            with contextlib.suppress(OSError):
                held.close()
        self.sockets = []


def _listen(host: str, port: int) -> socket.socket:
    held = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR ignores TIME_WAIT leftovers; no SO_REUSEPORT, so a port that
        # another HAProxy holds is refused instead of shared.
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            held.bind((host, port))
        except OSError as exc:
            raise Conflict(
                f"Port {port} on {host} is already in use ({exc.strerror}); "
                "stop what listens there or choose another port."
            ) from exc
        held.listen(BACKLOG)
        os.set_inheritable(held.fileno(), True)
    except BaseException:
        held.close()
        raise
    return held
