"""The Content-Security-Policy in the real Chromium: the pages, htmx swaps and promoter.js
work under it, and the browser reports no violation."""

from __future__ import annotations

import pytest

from registries.models import Tag
from tests.browser_support import login
from tests.conftest import PASSWORD, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_pages_and_htmx_work_under_the_policy_without_violations(demo, pushed, page):
    repo, _ = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=10)
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))

    page.goto(f"{demo.url}/accounts/login/")
    # The stylesheet applies (no inline style is needed, or allowed).
    width = page.locator(".auth").evaluate("e => getComputedStyle(e).maxWidth")
    assert width == "400px"
    login(page, demo.url, "Admin", PASSWORD)

    page.goto(f"{demo.url}/registries/devdocker/images/{repo}:1.0")
    # htmx: the promote dialog comes in a swap and promoter.js opens it.
    page.locator("#tag-actions summary").click()
    page.locator("#promote-action").click()
    dialog = page.locator("dialog#promote-dialog")
    dialog.wait_for(state="visible")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    # htmx: the History tab swaps in place and pushes the URL.
    page.locator("#history-tab").click()
    page.locator("#history tbody tr").first.wait_for()
    assert page.url.endswith("?tab=history")
    assert "Pushed" in page.locator("#history").inner_text()

    violations = [m for m in messages if "Content Security Policy" in m]
    assert violations == []
