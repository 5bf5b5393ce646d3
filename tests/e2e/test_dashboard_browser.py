"""The dashboard in a real browser, on a recorded incident: tables that read well at 1280 and 390 px,
and a moment corrected through its form (refused first, then taken, the impact computed again).

The guard's ops app is served by uvicorn in this process over a recorded data folder (the seed's
bug canaried and rolled back, ``tests/incidents/recorded.py``), so nothing is deployed and the test
needs no HAProxy. Every wait is for an element or a state, bounded by ``PATIENCE_MS``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect
from tests.e2e.browser_harness import SCREENSHOTS, csp_checked_page, launched_chromium
from tests.e2e.guard_harness import wait_until
from tests.edge.edge_harness import free_port
from tests.incidents.recorded import BAD, record_incident

from steadylink.clock import FakeClock
from steadylink.incidents.service import Incidents
from steadylink.incidents.store import IncidentStore
from steadylink.links.migrate import upgrade_to_head
from steadylink.links.service import create_key
from steadylink.links.sql_store import open_store
from steadylink.ops.api import create_ops_app
from steadylink.release.guard import Guard, SlotEntry
from steadylink.settings import Settings
from steadylink.types import Role
from steadylink.watch.journal import Journal

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
PATIENCE_MS = 60_000  # a loaded 2-core machine: generous, and still bounded
SERVING = "20261201002827-4d921e2361ed"  # as long as the ids `up` gives its first release

# Words a table cell broke across lines: a token is a run without white space, and a hyphen ends
# one (an id may break after its hyphen). [] when every header and short cell reads whole.
BROKEN_WORDS = """
(selector) => {
  const broken = [];
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.textContent.matchAll(/[^\\s-]+-?/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (tops.size > 1) { broken.push(match[0]); }
      }
    }
  }
  return broken;
}
"""


@dataclass
class Dashboard:
    url: str
    key: str
    incident_id: int


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    data_dir.mkdir()
    recorded = record_incident(data_dir, FakeClock())  # 5xx from t0+5 s, rolled back at t0+8 s
    store = open_store(f"sqlite:///{data_dir / 'links.db'}")
    upgrade_to_head(store.engine)
    guard = Guard(Settings(data_dir=data_dir, database=store.url))
    guard.state.serving = SERVING
    # a slot row as `up` shows one (the pid only has to exist: nothing here stops or supervises it)
    guard.state.slots[0] = SlotEntry(SERVING, os.getpid(), sys.executable)
    guard.state.weights[0] = 100
    journal = Journal.for_data_dir(data_dir)
    incidents = Incidents(IncidentStore.for_data_dir(data_dir), journal)
    app = create_ops_app(guard, store, source_dir=None, journal=journal, incidents=incidents)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 60, "the dashboard to listen")
        assert server.started, "uvicorn stopped before it listened"
        key = create_key(store=store, clock=guard.clock, name="alice", role=Role.EDITOR).secret
        yield Dashboard(f"http://127.0.0.1:{port}", key, recorded.incident_id)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        incidents.store.close()
        journal.close()
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with csp_checked_page(browser, {"width": 1280, "height": 800}, PATIENCE_MS) as opened:
        yield opened


def sign_in(page: Page, dashboard: Dashboard) -> None:
    page.goto(dashboard.url + "/")
    page.get_by_label("API key").fill(dashboard.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Incidents")).to_be_visible(timeout=PATIENCE_MS)


def test_tables_read_whole_words_on_a_laptop_and_on_a_phone(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard)
    expect(page.get_by_role("cell", name=BAD).first).to_be_visible(timeout=PATIENCE_MS)
    expect(page.get_by_role("cell", name=SERVING).first).to_be_visible(timeout=PATIENCE_MS)
    # the live refresh (ops.js) rebuilds the slot rows as the server renders them
    page.evaluate("document.querySelectorAll('[data-live=slots] tbody tr').forEach(r => { r.dataset.old = 1; })")
    page.wait_for_function(
        "() => { const r = document.querySelector('[data-live=slots] tbody tr'); return r && !r.dataset.old; }",
        timeout=PATIENCE_MS,
    )
    assert page.locator("[data-live=slots] tbody td.nowrap").count() == 4
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(dashboard.url + "/")
        expect(page.get_by_role("columnheader", name="weight")).to_be_attached(timeout=PATIENCE_MS)
        page.screenshot(path=str(SCREENSHOTS / f"steadylink-dashboard-{width}.png"), full_page=True)
        assert page.evaluate(BROKEN_WORDS, "th") == [], width
        assert page.evaluate(BROKEN_WORDS, "td.nowrap") == [], width
        # a table wider than a phone scrolls inside its box; the page itself never does
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.goto(f"{dashboard.url}/dash/incidents/{dashboard.incident_id}")
        expect(page.get_by_role("heading", name="Moments")).to_be_visible(timeout=PATIENCE_MS)
        assert page.evaluate(BROKEN_WORDS, ".moment-at") == [], width
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(SCREENSHOTS / f"steadylink-incident-{width}.png"), full_page=True)


def test_a_moment_is_corrected_through_its_form(page: Page, dashboard: Dashboard) -> None:
    sign_in(page, dashboard)
    page.goto(f"{dashboard.url}/dash/incidents/{dashboard.incident_id}")
    impact = page.locator("section[aria-labelledby=impact]")
    expect(impact).to_contain_text("120 of 400", timeout=PATIENCE_MS)  # 5xx from t0+5 s to the rollback at t0+8 s
    mitigated = page.locator("#moment-mitigated")
    expect(mitigated).to_contain_text("2026-01-01 00:00:08 UTC", timeout=PATIENCE_MS)

    # refused first: one sentence at the top, the form open again with what was typed
    mitigated.locator("summary").click()
    page.get_by_label("Mitigated, UTC").fill("2026-01-01 00:00:04")
    mitigated.get_by_label("Reason (kept in the timeline)").fill("the canary's weight went to 0 at 6 s")
    page.get_by_role("button", name="Correct mitigated").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "The mitigation cannot be before the first bad signal (2026-01-01 00:00:05 UTC).", timeout=PATIENCE_MS
    )
    expect(page.get_by_label("Mitigated, UTC")).to_have_value("2026-01-01 00:00:04", timeout=PATIENCE_MS)
    expect(page.locator("#moment-mitigated .pill")).to_have_count(0, timeout=PATIENCE_MS)  # nothing written
    page.screenshot(path=str(SCREENSHOTS / "steadylink-moment-refused.png"), full_page=True)

    page.get_by_label("Mitigated, UTC").fill("2026-01-01 00:00:06")
    page.get_by_role("button", name="Correct mitigated").click()
    expect(page.locator("#moment-mitigated")).to_contain_text("2026-01-01 00:00:06 UTC corrected", timeout=PATIENCE_MS)
    expect(page.get_by_role("alert")).to_have_count(0, timeout=PATIENCE_MS)
    expect(page.locator("ol.timeline")).to_contain_text(
        "mitigated corrected from 2026-01-01 00:00:08 UTC to 2026-01-01 00:00:06 UTC:"
        " the canary's weight went to 0 at 6 s",
        timeout=PATIENCE_MS,
    )
    expect(page.locator("ol.timeline li").last).to_contain_text("alice", timeout=PATIENCE_MS)
    expect(impact).to_contain_text("80 of 200", timeout=PATIENCE_MS)  # the impact, over the corrected window
    page.screenshot(path=str(SCREENSHOTS / "steadylink-moment-corrected.png"), full_page=True)
