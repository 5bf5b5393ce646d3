"""A real browser against a real server: shorten, follow, see the visit counted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, Route
from tests.e2e.browser_harness import SCREENSHOTS, csp_checked_page, launched_chromium

if TYPE_CHECKING:
    from tests.e2e.conftest import LandingSite, ServedApp

STATS_DEADLINE = 10.0

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with csp_checked_page(browser, {"width": 1200, "height": 900}) as opened:
        yield opened


def visits_on_stats_page(page: Page, stats_url: str) -> int:
    page.goto(stats_url)
    return int(page.locator("#total-visits").inner_text())


def test_shorten_follow_and_see_the_visit(
    page: Page, served_app: ServedApp, landing_site: LandingSite
) -> None:
    page.goto(served_app.base_url + "/")
    page.screenshot(path=str(SCREENSHOTS / "steadylink-home.png"), full_page=True)

    page.get_by_label("Long URL").fill(landing_site.url)
    page.get_by_role("button", name="Shorten").click()
    page.wait_for_url("**/s/*")
    short_url = page.locator("#short-url").inner_text()
    assert short_url.startswith(served_app.base_url + "/")
    assert page.locator("svg.qr").count() == 1
    copy = page.locator("button.copy")
    copy.click()
    page.wait_for_function("document.querySelector('button.copy').textContent === 'Copied'")
    page.screenshot(path=str(SCREENSHOTS / "steadylink-result.png"), full_page=True)
    stats_url = page.url.split("?", 1)[0]

    # "Your links" is kept in this browser and shown on the home page.
    page.goto(served_app.base_url + "/")
    assert page.locator("#your-links-list a.short").first.inner_text() == short_url

    page.goto(short_url)
    assert page.url == landing_site.url
    assert page.locator("#landed").inner_text() == "You have arrived."

    # Clicks are flushed at least every second: poll with a deadline, don't sleep blindly.
    deadline = time.monotonic() + STATS_DEADLINE
    visits = visits_on_stats_page(page, stats_url)
    while visits < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        visits = visits_on_stats_page(page, stats_url)
    assert visits == 1
    page.screenshot(path=str(SCREENSHOTS / "steadylink-stats.png"), full_page=True)


def test_form_error_is_shown_next_to_the_field(page: Page, served_app: ServedApp) -> None:
    page.goto(served_app.base_url + "/")
    page.get_by_label("Long URL").fill("javascript:alert(1)")
    page.get_by_role("button", name="Shorten").click()
    error = page.locator("#url-error")
    assert "http" in error.inner_text()
    assert page.get_by_label("Long URL").input_value() == "javascript:alert(1)"
    page.screenshot(path=str(SCREENSHOTS / "steadylink-error.png"), full_page=True)


def test_follow_a_password_link_to_its_target(
    page: Page, served_app: ServedApp, landing_site: LandingSite
) -> None:
    """Under the strict CSP (form-action 'self'), a 303 answer to the password form
    would leave Chromium on the form; the link must still reach its target."""
    page.goto(served_app.base_url + "/")
    page.get_by_label("Long URL").fill(landing_site.url)
    page.locator("summary").click()  # "More options"
    page.locator("#password").fill("open sesame")
    page.get_by_role("button", name="Shorten").click()
    page.wait_for_url("**/s/*")
    assert landing_site.url not in page.content()  # the target is the password's to show
    short_url = page.locator("#short-url").inner_text()

    page.goto(short_url)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Continue").click()
    assert "not right" in page.locator("#password-error").inner_text()
    page.get_by_label("Password").fill("open sesame")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(landing_site.url, timeout=10_000)
    assert page.locator("#landed").inner_text() == "You have arrived."


def test_the_api_docs_render_offline_under_the_csp(page: Page, served_app: ServedApp) -> None:
    """Swagger UI from the package: no request leaves the host, no inline script, the same CSP."""
    outside: list[str] = []
    host = served_app.base_url.split("://", 1)[1]

    def only_local(route: Route) -> None:
        if route.request.url.split("://", 1)[-1].startswith(host):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)  # as if the machine were offline
    answer = page.goto(served_app.base_url + "/api/docs")
    assert answer is not None and answer.status == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    page.locator(".opblock-summary-path", has_text="/api/v1/links").first.wait_for(timeout=15_000)
    assert page.locator(".info .title").inner_text().startswith("steadylink")
    assert outside == []
    assert "<script>" not in page.content().split("<body", 1)[0]
