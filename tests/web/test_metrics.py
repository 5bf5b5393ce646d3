"""/metrics: route templates, release label, redirects, creations, cache counts."""

from __future__ import annotations

import io

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from steadylink.clock import FakeClock
from steadylink.links import service
from steadylink.links.model import NewLink
from steadylink.settings import Settings
from steadylink.web.app import build_context, create_app, run_lifespan
from steadylink.web.metrics import AppMetrics

pytestmark = pytest.mark.anyio



def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_by_route_template(settings: Settings, clock: FakeClock) -> None:
    settings = settings.with_overrides(release_id="r7")
    ctx = build_context(settings, clock=clock)
    new = NewLink(url="https://example.com/")
    code = service.create_link(store=ctx.store, settings=settings, clock=clock, rng=ctx.rng, new=new).code
    app = create_app(settings, ctx=ctx, log_stream=io.StringIO())
    transport = httpx.ASGITransport(app=app)
    async with run_lifespan(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(3):
            await client.get(f"/{code}")
        await client.get("/unknown-code", headers={"Accept": "application/json"})
        await client.get("/api/v1/links/xyz")
        await client.get("/no/such/page")
        created = await client.post("/api/v1/links", json={"url": "https://example.org/"})
        assert created.status_code == 201
        from_form = await client.post("/", data={"url": "https://example.org/form"})
        assert from_form.status_code == 303
        app.metrics.sync_cache_counts(ctx.cache.hits, ctx.cache.misses)  # type: ignore[attr-defined]
        text = (await client.get("/metrics")).text
    samples = _samples(text)

    def requests(route: str, status: str) -> float:
        labels = {"route": route, "method": "GET", "status": status, "release": "r7"}
        return samples.get(("steadylink_http_requests_total", frozenset(labels.items())), 0)

    assert requests("/{code}", "302") == 3
    assert requests("/{code}", "404") == 1
    assert requests("/api/v1/links/{code}", "401") == 1
    assert requests("<unmatched>", "404") == 1
    release = frozenset({("release", "r7")})
    assert samples[("steadylink_redirects_total", release)] == 3
    # warm-up and the first change-log poll (in a thread) decide which of the
    # redirects hit: the metrics must say what the cache counted
    assert samples[("steadylink_cache_hits_total", release)] == ctx.cache.hits >= 2  # type: ignore[attr-defined]
    assert samples[("steadylink_cache_misses_total", release)] == ctx.cache.misses >= 1  # type: ignore[attr-defined]
    assert samples[("steadylink_links_created_total", release)] == 2  # the API's and the form's
    duration = frozenset({("route", "/{code}"), ("method", "GET"), ("release", "r7")})
    assert samples[("steadylink_http_request_duration_seconds_count", duration)] == 4


def test_observations_fold_into_labelled_children() -> None:
    metrics = AppMetrics("dev")
    metrics.observe("/{code}", "GET", 302, 0.0001)
    metrics.fold()
    children = dict(metrics._children)
    metrics.observe("/{code}", "GET", 302, 0.0002)
    metrics.fold()
    assert metrics._children == children
    assert (
        b'steadylink_http_requests_total{method="GET",release="dev",route="/{code}",status="302"} 2.0'
        in metrics.render()
    )
