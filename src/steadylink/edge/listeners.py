"""The front door's listening sockets, held by the guard and lent to HAProxy.

HAProxy binds nothing itself when the guard runs it: the guard opens the
plain-HTTP (and TLS) listening sockets once and starts HAProxy with them
inherited (``bind fd@N``). When HAProxy dies — its worker killed, its master
killed, a crash — the sockets stay open in the guard, so clients that connect
meanwhile wait in the kernel's accept queue instead of being refused, and the
HAProxy the guard starts in its place takes them from there. HAProxy's own
reloads keep them too: the master re-executes itself with its inherited file
descriptors. Connections the dead process had already accepted are lost with it.

A guard that starts next to a running HAProxy (the previous guard was killed)
takes copies of the sockets HAProxy's master inherited (``pidfd_getfd``,
Linux 5.6 and later; the same user, where ptrace rules allow it), so it holds
them from then on too. HAProxy's own ``_getsocks`` cannot give them: it
exports only the sockets it bound itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from steadylink.errors import Conflict

# pidfd_getfd(2): the same number on every architecture (a syscall added after the tables merged)
SYS_PIDFD_GETFD = 438

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

    @classmethod
    def take_from(cls, pid: int, fds: Sequence[int], host: str, ports: Sequence[int]) -> HeldListeners:
        """Copies of process ``pid``'s descriptors ``fds``, each checked to listen on ``host:port``.

        OSError with the reason when the system refuses (no ``pidfd_getfd``, no
        permission, the process gone) or a descriptor is not that listener.
        """
        if len(fds) != len(ports):
            raise OSError(f"{len(fds)} descriptors for {len(ports)} ports")
        if not hasattr(os, "pidfd_open"):
            raise OSError("this system has no pidfd_getfd (Linux 5.6 and later)")
        taken: list[socket.socket] = []
        try:
            pidfd = os.pidfd_open(pid)
            try:
                for fd, port in zip(fds, ports, strict=True):
                    taken.append(_listener_copy(pidfd, fd, host, port))
            finally:
                os.close(pidfd)
        except BaseException:
            for held in taken:
                held.close()
            raise
        return cls(taken)

    @classmethod
    def inherited(cls, fds: Sequence[int], host: str, ports: Sequence[int]) -> HeldListeners:
        """The listening sockets this process inherited as ``fds`` (a guard that executed itself
        again), each checked to listen on ``host:port``; OSError naming the first that does not."""
        if len(fds) != len(ports):
            raise OSError(f"{len(fds)} descriptors for {len(ports)} ports")
        held: list[socket.socket] = []
        try:
            for fd, port in zip(fds, ports, strict=True):
                held.append(_checked_listener(fd, fd, host, port))
        except BaseException:
            for one in held:
                one.detach()  # not ours to close when they are not what we expected
            raise
        return cls(held)

    @property
    def fds(self) -> tuple[int, ...]:
        return tuple(held.fileno() for held in self.sockets)

    def close(self) -> None:
        for held in self.sockets:
            with contextlib.suppress(OSError):
                held.close()
        self.sockets = []


def _listener_copy(pidfd: int, fd: int, host: str, port: int) -> socket.socket:
    libc = ctypes.CDLL(None, use_errno=True)
    copied = int(libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0))
    if copied < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pidfd_getfd of descriptor {fd}: {os.strerror(err)}")
    try:
        return _checked_listener(copied, fd, host, port)
    except OSError:
        os.close(copied)
        raise


def _checked_listener(copied: int, fd: int, host: str, port: int) -> socket.socket:
    """``copied`` as a socket, if it listens on ``host:port`` (``fd``: its name in messages)."""
    try:
        held = socket.socket(fileno=copied)
    except OSError as exc:
        raise OSError(f"descriptor {fd} is not the listener on {host}:{port} ({exc.strerror})") from exc
    try:
        address = held.getsockname()
        listening = held.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if held.type != socket.SOCK_STREAM or not listening or not _is_address(address, host, port):
            raise OSError(f"descriptor {fd} is not the listener on {host}:{port} (it is {address!r})")
        os.set_inheritable(copied, True)
    except BaseException:
        held.detach()  # the caller decides what becomes of the descriptor
        raise
    return held


def _is_address(address: tuple[str, int] | tuple[str, int, int, int], host: str, port: int) -> bool:
    """``getsockname``'s answer is ``host:port`` (a host name is taken as matching any address)."""
    try:
        same_host = ipaddress.ip_address(address[0]) == ipaddress.ip_address(host)
    except ValueError:
        same_host = True
    return same_host and address[1] == port


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
