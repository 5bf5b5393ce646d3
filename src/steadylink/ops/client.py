"""How the CLI reaches a running guard: its ops port from ``run/guard.json``,
its key from ``STEADYLINK_API_KEY`` or the local operator key file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from steadylink.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ReleaseError,
    SteadylinkError,
    Unauthorized,
)
from steadylink.ops.server import operator_key_path
from steadylink.release.guard import read_state
from steadylink.settings import Settings

_ERRORS: dict[int, type[SteadylinkError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
}


@dataclass(frozen=True)
class GuardClient:
    base_url: str
    api_key: str

    @classmethod
    def find(cls, settings: Settings) -> GuardClient:
        state = read_state(settings.data_dir.resolve())
        if state is None or state.ops_port is None:
            raise ReleaseError(
                f"No guard runs for {settings.data_dir}; start one with `steadylink up` "
                "(or pass the same --data-dir it uses)."
            )
        key = os.environ.get("STEADYLINK_API_KEY")
        if not key:
            path = operator_key_path(settings.data_dir)
            try:
                key = path.read_text().strip()
            except OSError:
                raise Unauthorized(f"No API key: set STEADYLINK_API_KEY or make {path} readable.") from None
        return cls(f"http://{_reachable(settings.ops_host)}:{state.ops_port}", key)

    def get(self, path: str, *, timeout: float = 60) -> Any:
        return self._call("GET", path, timeout=timeout)

    def post(self, path: str, body: dict[str, object] | None = None) -> Any:
        return self._call("POST", path, body)

    def deploy(self, body: dict[str, object], on_progress: Callable[[str], None]) -> dict[str, Any]:
        """Start a deploy and relay its progress lines; return the final line."""
        final: dict[str, Any] = {}
        for line in self._stream("/ops/v1/deploys", body):
            if "progress" in line:
                on_progress(str(line["progress"]))
            else:
                final = line
        if not final:
            raise ReleaseError("The guard closed the deploy stream early; see `steadylink releases`.")
        return final

    def _stream(self, path: str, body: dict[str, object]) -> Iterator[dict[str, Any]]:
        try:
            with (
                httpx.Client(base_url=self.base_url, headers=self._headers(), timeout=None) as client,
                client.stream("POST", path, json=body) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                for raw in response.iter_lines():
                    if raw.strip():
                        yield json.loads(raw)
        except httpx.TransportError as exc:
            raise ReleaseError(f"The guard at {self.base_url} does not answer ({exc}).") from exc

    def _call(
        self, method: str, path: str, body: dict[str, object] | None = None, *, timeout: float = 60
    ) -> Any:
        try:
            with httpx.Client(base_url=self.base_url, headers=self._headers(), timeout=timeout) as client:
                response = client.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ReleaseError(f"The guard at {self.base_url} does not answer ({exc}).") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response.json()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @staticmethod
    def _error(response: httpx.Response) -> SteadylinkError:
        try:
            message = str(response.json().get("message") or response.text)
        except ValueError:
            message = response.text
        return _ERRORS.get(response.status_code, ReleaseError)(message)


def _reachable(host: str) -> str:
    """Where to reach a server bound to ``host``: a wildcard address is reached on loopback."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
