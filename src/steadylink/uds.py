"""HTTP over a release's unix socket, as the guard's probes and checks speak it."""

from __future__ import annotations

import functools
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
