"""Each probe kind against a fake front door (httpx's MockTransport): what counts as a failure."""

import httpx

from steadylink.settings import Settings
from steadylink.watch.probes import PROBE_KINDS, CreateProbe, ProbeIdentity, RedirectProbe, UiProbe

IDENTITY = ProbeIdentity("_probe-redirect", "https://probe.steadylink.invalid/", "slk__probe_secret")


def client(handler) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(base_url="http://front", transport=httpx.MockTransport(handler))


def test_the_registry_has_the_three_kinds() -> None:
    assert list(PROBE_KINDS) == ["redirect", "create", "ui"]


def test_redirect_checks_status_and_exact_location() -> None:
    probe = RedirectProbe(Settings(), IDENTITY, every=1)
    good = client(lambda r: httpx.Response(302, headers={"location": IDENTITY.redirect_url}))
    assert probe.run(good).ok
    wrong = client(lambda r: httpx.Response(302, headers={"location": "https://elsewhere.example/"}))
    result = probe.run(wrong)
    assert not result.ok and "Location" in (result.error or "")
    assert not probe.run(client(lambda r: httpx.Response(502))).ok


def test_a_timeout_is_a_failure() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    result = RedirectProbe(Settings(), IDENTITY, every=1).run(client(hang))
    assert not result.ok and result.error == "no answer within 0.8s" and result.latency_ms is None


def test_create_makes_resolves_and_deletes_its_link() -> None:
    seen: list[str] = []
    made: dict[str, str] = {}

    def front(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            made["url"] = httpx.Request("GET", "http://x", content=request.content).read().decode()
            import json

            made["url"] = json.loads(request.content)["url"]
            return httpx.Response(201, json={"code": "abc1234"})
        if request.method == "GET":
            return httpx.Response(302, headers={"location": made["url"]})
        return httpx.Response(204)

    assert CreateProbe(Settings(), IDENTITY, every=10).run(client(front)).ok
    assert seen == ["POST /api/v1/links", "GET /abc1234", "DELETE /api/v1/links/abc1234"]


def test_ui_wants_a_200() -> None:
    probe = UiProbe(Settings(), IDENTITY, every=10)
    assert probe.run(client(lambda r: httpx.Response(200))).ok
    assert not probe.run(client(lambda r: httpx.Response(503))).ok
