"""HTTPS at the front door: a real HAProxy, a certificate made here, HTTP/2 and HTTP/1.1."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from tests.edge.edge_harness import Upstream, free_port, running_edge
from tests.edge.tls_harness import make_certificate

from steadylink.edge import EdgeConfig, EdgeProcess, SlotSetting, reload_edge
from steadylink.edge.linkmap import write_map_file


@pytest.fixture
def tls_config(edge_config: EdgeConfig, tmp_path: Path) -> EdgeConfig:
    cert = make_certificate(tmp_path)
    return replace(
        edge_config, tls_certs=(cert,), tls_port=free_port(), edge_redirects=True,
        initial={0: SlotSetting(100, "ready")},
    )  # fmt: skip


@pytest.fixture
def tls_edge(tls_config: EdgeConfig, upstreams: list[Upstream]) -> Iterator[EdgeProcess]:
    write_map_file(tls_config.link_map, [("/abc", "https://example.com/a")])
    with running_edge(tls_config) as process:
        yield process


def client(cert: Path, *, http2: bool) -> httpx.Client:
    return httpx.Client(verify=trusting(cert), http2=http2, follow_redirects=False, timeout=5)


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.mark.parametrize("http2", [True, False])
def test_edge_and_app_answers_over_https(tls_edge: EdgeProcess, http2: bool) -> None:
    config = tls_edge.config
    base = f"https://localhost:{config.tls_port}"
    with client(config.tls_certs[0], http2=http2) as https:
        edge = https.get(f"{base}/abc")
        app = https.get(f"{base}/other")
    assert edge.http_version == app.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert (edge.status_code, edge.headers["location"], edge.headers["x-served-by"]) == (
        302, "https://example.com/a", "edge",
    )  # fmt: skip
    assert app.headers["x-served-by"] == "s0"
    for answer in (edge, app):
        assert answer.headers["strict-transport-security"] == "max-age=31536000"


def test_plain_http_is_sent_to_https_on_the_same_host(tls_edge: EdgeProcess) -> None:
    config = tls_edge.config
    answer = httpx.get(f"http://localhost:{config.port}/abc?x=1", follow_redirects=False)
    assert answer.status_code == 301
    assert answer.headers["location"] == f"https://localhost:{config.tls_port}/abc?x=1"
    assert "strict-transport-security" not in answer.headers  # only over TLS (RFC 6797)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_old_protocols_are_refused(tls_edge: EdgeProcess) -> None:
    context = trusting(tls_edge.config.tls_certs[0])
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://localhost:{tls_edge.config.tls_port}/abc", verify=context)


def test_hsts_can_be_turned_off(tls_config: EdgeConfig, upstreams: list[Upstream]) -> None:
    config = replace(tls_config, hsts_seconds=0)
    write_map_file(config.link_map, [])
    with running_edge(config), client(config.tls_certs[0], http2=True) as https:
        assert "strict-transport-security" not in https.get(f"https://localhost:{config.tls_port}/x").headers


def test_a_renewed_certificate_is_picked_up_by_a_reload_without_a_failed_request(
    tls_edge: EdgeProcess, tmp_path: Path
) -> None:
    config = tls_edge.config
    renewed = make_certificate(tmp_path, "renewed")
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    # trusts both: the old certificate until the reload, the new one after
    bundle = tmp_path / "both.pem"
    bundle.write_text(config.tls_certs[0].read_text() + renewed.read_text())

    def load() -> None:
        with client(bundle, http2=True) as https:
            while not stop.is_set():
                try:
                    status = https.get(f"https://localhost:{config.tls_port}/abc").status_code
                except httpx.RemoteProtocolError:
                    # the old HAProxy ended the idle connection (HTTP/2 GOAWAY) before this
                    # request was taken: clients send it again on a new one, as browsers do
                    try:
                        status = https.get(f"https://localhost:{config.tls_port}/abc").status_code
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        continue
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                answered[0] += 1
                if status != 302:
                    failures.append(str(status))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        config.tls_certs[0].write_text(renewed.read_text())  # what a certbot deploy hook does
        reload_edge(tls_edge)
        with client(renewed, http2=False) as https:  # trusts only the renewed certificate
            assert https.get(f"https://localhost:{config.tls_port}/abc").status_code == 302
    finally:
        stop.set()
        worker.join()
    assert failures == [] and answered[0] > 0
