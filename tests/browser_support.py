"""Shared Playwright fixtures for browser tests in the real Chromium.

Use them from a conftest.py (or a test module):
    from tests.browser_support import browser, page  # noqa: F401
and mark tests @pytest.mark.browser. Helpers: login(page, portal_url, username, password),
screenshot(page, name) → /tmp/shots/<name>.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("PROMOTER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("PROMOTER_SHOTS", "/tmp/shots"))


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the session (Playwright's sync API; playwright install is not needed)."""
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by
    # tests between page actions are still synchronous and safe.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) and page, 1280×900, 15 s default timeout."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def login(page, portal_url: str, username: str, password: str) -> None:
    """Sign in through the login page and wait until the portal answers signed in."""
    page.goto(f"{portal_url}/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(".topbar-username")


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot to /tmp/shots/<name>.png (for a person to look at)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
