"""HTTP over a release's unix socket, as the guard's probes and checks speak it."""

from __future__ import annotations

import functools
import http.client
import socket as socketlib
import ssl
from pathlib import Path

import httpx


@functools.cache
def _unused_tls() -> ssl.SSLContext:
    # A unix socket never uses TLS, but httpx makes a context per transport
    # unless given one, and loading the CA bundle costs ~50 ms of CPU each time:
    # at a probe a second that was most of the guard's own CPU.
    return ssl.create_default_context()


def uds_transport(socket: Path) -> httpx.HTTPTransport:
    """A transport to ``socket`` that costs no TLS set-up."""
    return httpx.HTTPTransport(uds=str(socket), verify=_unused_tls())


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("release", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def get_status(socket: Path, path: str, *, timeout: float) -> int | None:
    """The status ``GET path`` answers on ``socket``; None if nothing answers within ``timeout``.

    The supervisor asks every second per group: the standard library's client
    costs a tenth of a millisecond of CPU where an httpx client costs several.
    """
    connection = _UnixConnection(socket, timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
