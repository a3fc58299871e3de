"""A person promotes in the real Chromium: ▼ → Promote, progress, success, the History tab."""

from __future__ import annotations

import pytest

from registries.models import Promotion, Tag
from tests.browser_support import login, screenshot
from tests.support.accounts import PASSWORD
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_promote_from_the_tag_page_and_read_history(demo, pushed, real_worker, page):
    repo, info = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=5)
    login(page, demo.url, "Admin", PASSWORD)

    page.goto(f"{demo.url}/registries/devdocker/images/{repo}:1.0")
    page.locator("#tag-actions summary").click()
    page.locator("#promote-action").click()
    dialog = page.locator("dialog#promote-dialog")
    dialog.wait_for(state="visible")
    assert dialog.locator("#fixed-target").inner_text() == "rcdocker"
    dialog.get_by_label("Comment").fill("Ready for testing")
    screenshot(page, "promote-dialog")
    page.locator("#promote-submit").click()

    result = page.locator("#promotion-result")
    result.wait_for(state="visible", timeout=60_000)
    assert "Promoted" in result.inner_text()
    screenshot(page, "promote-succeeded")
    assert Promotion.objects.get().status == "succeeded"

    page.locator("#promoted-tag-link").click()
    page.wait_for_url(f"**/registries/rcdocker/images/{repo}:1.0")
    page.locator("#history-tab").click()
    row = page.locator("#history tbody tr").first
    row.wait_for()
    text = row.inner_text()
    screenshot(page, "history-tab")
    assert "Promoted" in text
    assert "by Admin" in text
    assert "from devdocker to rcdocker" in text
    assert "Ready for testing" in text
