"""Debian's chromium under Playwright, as every browser test drives it.

``launched_chromium`` starts the browser (and fails the test, not skips it,
when the project's setup did not install it); ``csp_checked_page`` opens a
page in a fresh context and, when the test is done, asserts that nothing
broke the Content Security Policy (a violation shows up as a console error).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path("/tmp")


@contextlib.contextmanager
def launched_chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; the project's setup installs Debian's chromium.")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextlib.contextmanager
def csp_checked_page(
    browser: Browser, viewport: ViewportSize, patience_ms: float | None = None
) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport)
    if patience_ms is not None:
        context.set_default_timeout(patience_ms)
        context.set_default_navigation_timeout(patience_ms)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        yield opened
    finally:
        context.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
