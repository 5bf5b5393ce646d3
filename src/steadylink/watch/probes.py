"""The guard's probes: what a user would do, through the front door, on a clock.

Each probe kind is a class with a ``name``, an ``every`` (seconds) and a
``run`` that makes its requests with a short timeout and says ``ProbeResult``.
A timeout, a connection error or a wrong answer is a failure; nothing raises.
``PROBE_KINDS`` lists the kinds in one registry that refuses a second class
of the same name.

* ``redirect`` (liveness, every second): GET the reserved probe link; the
  status must be the configured redirect status and ``Location`` exact.
* ``create`` (synthetic transaction, every 10 s): create a link in the reserved
  namespace through the API, resolve it, check ``Location``, delete it.
* ``ui`` (every 10 s): GET / must answer 200.

During a rollout the watcher runs the same kinds against the canary's own
socket (``Target.socket``), named ``redirect@canary`` and so on.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx

from steadylink.registry import Registry
from steadylink.settings import Settings
from steadylink.uds import uds_transport


@dataclass(frozen=True)
class ProbeIdentity:
    """What the guard made for its probes (``watch/probe_setup.py``)."""

    redirect_code: str
    redirect_url: str
    api_key: str


@dataclass(frozen=True)
class Target:
    """Where a probe goes: the front door (``base_url``) or a release's own socket."""

    base_url: str
    socket: Path | None = None
    label: str = ""

    def client(self, timeout: float) -> httpx.Client:
        transport = uds_transport(self.socket) if self.socket else None
        return httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, follow_redirects=False
        )


@dataclass(frozen=True)
class ProbeResult:
    probe: str
    ok: bool
    latency_ms: float | None
    error: str | None = None


class Probe:
    name: ClassVar[str] = ""
    every: float = 1.0

    def __init__(self, settings: Settings, identity: ProbeIdentity, *, every: float) -> None:
        self.settings = settings
        self.identity = identity
        self.every = every
        self.timeout = settings.watch.probe_timeout_seconds

    def run(self, client: httpx.Client) -> ProbeResult:
        started = time.perf_counter()
        try:
            error = self.check(client)
        except httpx.TimeoutException:
            error = f"no answer within {self.timeout:g}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        latency = round((time.perf_counter() - started) * 1000, 2)
        return ProbeResult(self.name, error is None, latency if error is None else None, error)

    def check(self, client: httpx.Client) -> str | None:
        """Make the requests; None when all is well, else what was wrong."""
        raise NotImplementedError

    def expect_redirect(self, client: httpx.Client, code: str, url: str) -> str | None:
        response = client.get(f"/{code}")
        wanted = self.settings.links.redirect_status
        if response.status_code != wanted:
            return f"GET /{code} answered {response.status_code}, not {wanted}"
        if response.headers.get("location") != url:
            return f"GET /{code} sent Location {response.headers.get('location')!r}, not {url!r}"
        return None


PROBE_KINDS: Registry[type[Probe]] = Registry("probe kind")


def probe_kind(cls: type[Probe]) -> type[Probe]:
    return PROBE_KINDS.register(cls.name, cls)


@probe_kind
class RedirectProbe(Probe):
    name = "redirect"

    def check(self, client: httpx.Client) -> str | None:
        return self.expect_redirect(client, self.identity.redirect_code, self.identity.redirect_url)


@probe_kind
class CreateProbe(Probe):
    name = "create"

    def check(self, client: httpx.Client) -> str | None:
        headers = {"Authorization": f"Bearer {self.identity.api_key}"}
        url = f"{self.identity.redirect_url.rstrip('/')}/create/{secrets.token_hex(4)}"
        made = client.post("/api/v1/links", json={"url": url}, headers=headers)
        if made.status_code != 201:
            return f"POST /api/v1/links answered {made.status_code}"
        code = str(made.json().get("code", ""))
        wrong = self.expect_redirect(client, code, url)
        # a link left behind (delete failed) stays in the probe namespace, out of every list
        gone = client.delete(f"/api/v1/links/{code}", headers=headers)
        if wrong is None and gone.status_code != 204:
            wrong = f"DELETE /api/v1/links/{code} answered {gone.status_code}"
        return wrong


@probe_kind
class UiProbe(Probe):
    name = "ui"

    def check(self, client: httpx.Client) -> str | None:
        response = client.get("/")
        return None if response.status_code == 200 else f"GET / answered {response.status_code}"


def build_probes(settings: Settings, identity: ProbeIdentity) -> list[Probe]:
    every: dict[str, Callable[[Settings], float]] = {
        "redirect": lambda s: s.watch.probe_interval_seconds,
        "create": lambda s: s.watch.create_probe_seconds,
        "ui": lambda s: s.watch.ui_probe_seconds,
    }
    return [cls(settings, identity, every=every[name](settings)) for name, cls in PROBE_KINDS.items()]
