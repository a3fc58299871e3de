"""Promoting without a mouse, and without JavaScript, in the real Chromium with the real worker."""

from __future__ import annotations

import pytest

from registries.models import HistoryEvent, Promotion, Registry, Tag
from tests.browser_support import login, screenshot
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

SUMMARY = "#tag-actions > summary"


def focused(page, selector: str) -> bool:
    return page.evaluate("s => document.activeElement?.matches(s) ?? false", selector)


def tab_to(page, selector: str, limit: int = 40) -> None:
    """Press Tab from the top of the page until `selector` has focus (bounded)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page, selector):
            return
    raise AssertionError(f"{selector} never got focus after {limit} Tabs")


def test_promote_with_the_keyboard_only_and_focus_returns_to_the_menu_button(
    demo, indexed, real_worker, page
):
    repo, info = indexed
    login(page, demo.url, "Admin", PASSWORD)
    page.goto(f"{demo.url}/registries/devdocker/images/{repo}:1.0")

    tab_to(page, SUMMARY)
    assert page.get_attribute(SUMMARY, "aria-haspopup") == "menu"
    page.keyboard.press("Enter")
    assert page.get_attribute(SUMMARY, "aria-expanded") == "true"
    assert page.get_attribute("#tag-actions .dropdown-menu", "role") == "menu"
    assert focused(page, "#promote-action[role=menuitem]")
    page.keyboard.press("Escape")  # Esc closes the menu and gives focus back to its button
    assert page.get_attribute(SUMMARY, "aria-expanded") == "false"
    assert focused(page, SUMMARY)
    page.keyboard.press("ArrowDown")  # ArrowDown opens it on the first item
    assert focused(page, "#promote-action")

    page.keyboard.press("Enter")
    page.locator("dialog#promote-dialog[open]").wait_for()
    assert focused(page, "#promote-dialog textarea[name=comment]")
    page.keyboard.type("Ready for testing, by keyboard")
    screenshot(page, "keyboard-promote-dialog")
    page.keyboard.press("Control+Enter")

    result = page.locator("#promotion-result")
    result.wait_for(state="visible", timeout=60_000)
    assert "Promoted" in result.inner_text()
    assert focused(page, "#promote-dialog #progress-close")
    page.keyboard.press("Escape")
    page.locator("dialog#promote-dialog").wait_for(state="detached")
    assert focused(page, SUMMARY), "focus must return to the Actions button"

    promotion = Promotion.objects.get()
    assert promotion.status == "succeeded"
    assert promotion.comment == "Ready for testing, by keyboard"
    event = HistoryEvent.objects.get(action="promoted", repository=repo)
    assert event.comment == "Ready for testing, by keyboard"

    # A menu of two items: arrows wrap, Home and End jump; Close returns focus too.
    Tag.objects.filter(repository__registry__name="rcdocker", repository__name=repo).update(
        previous_digest=info.digest
    )
    page.goto(f"{demo.url}/registries/rcdocker/images/{repo}:1.0")
    tab_to(page, SUMMARY)
    page.keyboard.press("Enter")
    assert focused(page, "#promote-action")
    page.keyboard.press("ArrowDown")
    assert focused(page, "#rollback-action")
    page.keyboard.press("ArrowDown")
    assert focused(page, "#promote-action")
    page.keyboard.press("ArrowUp")
    assert focused(page, "#rollback-action")
    page.keyboard.press("Home")
    assert focused(page, "#promote-action")
    page.keyboard.press("End")
    assert focused(page, "#rollback-action")
    page.keyboard.press("Enter")
    page.locator("dialog#rollback-dialog[open]").wait_for()
    assert focused(page, "#rollback-dialog textarea[name=comment]")
    page.keyboard.press("Tab")  # Cancel
    page.keyboard.press("Enter")
    page.locator("dialog#rollback-dialog").wait_for(state="detached")
    assert focused(page, SUMMARY)


@pytest.mark.slow
def test_without_javascript_a_promotion_page_refreshes_until_it_finishes(
    demo, indexed, browser, settings, request
):
    repo, info = indexed
    # The worker starts only once the page shows the promotion waiting, so the page has to
    # pick up the result by itself.
    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks_db.DatabaseBackend",
            "QUEUES": ["default", "promotions"],
        }
    }
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        login(page, demo.url, "Admin", PASSWORD)
        page.goto(f"{demo.url}/registries/devdocker/images/{repo}:1.0")
        assert page.locator(".btn-copy").first.is_hidden(), "Copy buttons need JavaScript"
        assert page.locator(".theme-toggle").is_hidden()
        page.locator(SUMMARY).click()  # a <details> opens without JavaScript
        page.locator("#promote-action").click()
        page.wait_for_url(f"**/registries/devdocker/images/{repo}:1.0/promote")
        page.get_by_label("Comment").fill("Promoted without JavaScript")
        page.get_by_role("button", name="Promote").click()
        page.wait_for_url("**/promotions/*/")
        assert page.locator("#promotion-progress").get_attribute("data-status") == "queued"
        # (Playwright's text locators skip <noscript>, so the hint is found by CSS.)
        hint = page.locator("#promotion-progress noscript p")
        assert hint.is_visible()
        assert "reloads itself every 2 seconds" in hint.inner_text()
        screenshot(page, "nojs-promotion-queued")

        request.getfixturevalue("real_worker")
        result = page.locator("#promotion-result")
        result.wait_for(state="visible", timeout=60_000)  # no click, no reload by the test
        assert "Promoted" in result.inner_text()
        assert not hint.count()  # finished: no more reloading
        screenshot(page, "nojs-promotion-succeeded")
    finally:
        context.close()
    promotion = Promotion.objects.get()
    assert promotion.status == "succeeded" and promotion.comment == "Promoted without JavaScript"
    tag = Tag.objects.get(repository__registry__name="rcdocker", repository__name=repo)
    assert tag.digest == info.digest


def test_a_failed_promotion_runs_again_from_its_dialog(demo, indexed, page):
    repo, info = indexed
    failed = Promotion.objects.create(
        source=Registry.objects.get(name="devdocker"),
        target=Registry.objects.get(name="rcdocker"),
        repository=repo,
        tag="1.0",
        digest=info.digest,
        actor="Admin",
        status=Promotion.Status.FAILED,
        error="The target registry did not answer (simulated).",
    )
    login(page, demo.url, "Admin", PASSWORD)
    page.goto(f"{demo.url}/promotions/")
    # The dialog as the progress polling shows it once the promotion has failed.
    page.evaluate(
        "url => htmx.ajax('GET', url, {target: '#modal-root'})",
        f"/promotions/{failed.pk}/?partial=dialog",
    )
    dialog = page.locator("dialog#promote-dialog[open]")
    dialog.wait_for()
    assert "The promotion failed." in dialog.inner_text()
    screenshot(page, "failed-dialog")

    dialog.get_by_role("button", name="Run again").click()

    result = page.locator("dialog#promote-dialog #promotion-result")
    result.wait_for(state="visible", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelector('#promotion-progress')?.dataset.status === 'succeeded'",
        timeout=60_000,
    )
    assert "Promoted" in result.inner_text()
    failed.refresh_from_db()
    assert failed.status == "succeeded"
    tag = Tag.objects.get(repository__registry__name="rcdocker", repository__name=repo)
    assert tag.digest == info.digest
