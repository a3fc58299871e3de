"""Promote many at once in the real Chromium, with the real worker: the registry page's
checkboxes (by keyboard), Promote selected, a tag pattern, Preview, the batch page's
progress (htmx), one image failing without undoing the other 11, Run again the failed
ones; and the repository page's multi-select without JavaScript at all."""

from __future__ import annotations

import pytest

from registries.models import Batch, HistoryEvent, Promotion
from tests.browser_support import login, screenshot
from tests.support.accounts import PASSWORD
from tests.support.batches import break_blob, push_release, row_counts, wait_indexed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_promote_12_images_of_4_repositories_from_the_registry_page(
    demo, admin_creds, tmp_path, real_worker, page
):
    prefix, images = push_release(demo.hostport, creds=admin_creds, tmp_path=tmp_path)
    wait_indexed("devdocker", images)
    broken = (f"{prefix}/svc1", "4.2.2")
    path, data = break_blob(demo.registry, images[broken].layer_digests[1])
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    login(page, demo.url, "Admin", PASSWORD)

    page.goto(f"{demo.url}/registries/devdocker/?q={prefix}")
    boxes = page.locator("#repositories input[name=repository]")
    assert boxes.count() == 4
    for n in range(4):  # by keyboard: focus each checkbox, Space ticks it
        boxes.nth(n).focus()
        page.keyboard.press("Space")
    assert page.locator("#selected-count").inner_text() == "4 selected"
    page.locator("#promote-selected").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/registries/devdocker/promote-selected?*")
    assert page.locator("#selected-repositories li").count() == 4
    assert page.locator("#fixed-target").inner_text() == "rcdocker"
    page.get_by_label("Tags").fill("4.2.*")
    page.get_by_label("Comment").fill("Release 4.2")

    before = row_counts()
    page.locator("#batch-preview").click()
    rows = page.locator("#preview tbody tr")
    rows.first.wait_for()
    assert rows.count() == 12  # 4.1.0 is left out by the pattern
    assert row_counts() == before  # the preview wrote nothing
    first = rows.first
    assert first.get_attribute("data-image") == f"{prefix}/svc0:4.2.0"
    assert images[(f"{prefix}/svc0", "4.2.0")].digest[7:19] in first.inner_text()
    assert "new in rcdocker" in first.inner_text()
    screenshot(page, "batch-preview")

    page.locator("#batch-submit").click()
    page.wait_for_url("**/promotions/batches/*/")
    progress = page.locator("#batch-progress")
    # htmx polls the progress until every image finished (the worker runs them).
    page.locator('#batch-progress[data-status="failed"]').wait_for(timeout=120_000)
    screenshot(page, "batch-failed-one")
    assert page.locator("#batch-count").inner_text() == "12 of 12 images"
    summary = page.locator("#batch-summary").inner_text()
    assert "11 succeeded · 1 failed · 0 refused" in summary
    assert "a failure of one does not undo the others" in progress.inner_text()
    failed = page.locator('#batch-items tr[data-status="failed"]')
    assert failed.count() == 1
    assert failed.get_attribute("data-image") == f"{broken[0]}:{broken[1]}"
    assert page.locator('#batch-items tr[data-status="succeeded"]').count() == 11
    promoted = HistoryEvent.objects.filter(action="promoted", registry="rcdocker")
    assert sorted(promoted.values_list("repository", "tag")) == sorted(
        pair for pair in images if pair != broken
    )
    assert set(promoted.values_list("actor", "comment")) == {("Admin", "Release 4.2")}

    path.write_bytes(data)  # the source is whole again
    page.locator("#batch-run-again").click()
    page.locator('#batch-progress[data-status="succeeded"]').wait_for(timeout=120_000)
    assert page.locator("#batch-count").inner_text() == "12 of 12 images"
    assert promoted.count() == 12
    assert Promotion.objects.filter(status="succeeded").count() == 12
    screenshot(page, "batch-succeeded")
    assert [m for m in messages if "Content Security Policy" in m] == []


def test_promote_selected_tags_of_a_repository_without_javascript(
    demo, admin_creds, tmp_path, real_worker, browser
):
    prefix, images = push_release(
        demo.hostport, creds=admin_creds, tmp_path=tmp_path, repositories=1
    )
    wait_indexed("devdocker", images)
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        login(page, demo.url, "Admin", PASSWORD)
        page.goto(f"{demo.url}/registries/devdocker/images/{prefix}/svc0")
        page.locator('input[name=image][value$=":4.2.0"]').check()
        page.locator('input[name=image][value$=":4.2.2"]').check()
        page.locator("#promote-selected").click()
        page.wait_for_url("**/promote-selected?*")
        assert sorted(page.locator("#selected-images li").all_inner_texts()) == [
            f"{prefix}/svc0:4.2.0",
            f"{prefix}/svc0:4.2.2",
        ]
        page.locator("#batch-submit").click()
        page.wait_for_url("**/promotions/batches/*/")
        # Without JavaScript the page reloads itself (meta refresh) until both finished.
        page.locator('#batch-progress[data-status="succeeded"]').wait_for(timeout=120_000)
        assert page.locator("#batch-count").inner_text() == "2 of 2 images"
        assert page.locator("#batch-run-again").count() == 0
    finally:
        context.close()
    batch = Batch.objects.get()
    assert sorted(i.tag for i in batch.items.all()) == ["4.2.0", "4.2.2"]
    assert HistoryEvent.objects.filter(action="promoted").count() == 2


def test_promote_selected_from_the_pipeline_board(demo, admin_creds, tmp_path, real_worker, page):
    prefix, images = push_release(
        demo.hostport, creds=admin_creds, tmp_path=tmp_path, repositories=2, tags=("4.2.0",)
    )
    wait_indexed("devdocker", images)
    login(page, demo.url, "Admin", PASSWORD)

    page.goto(f"{demo.url}/")
    waiting = page.locator("#waiting-devdocker-rcdocker")
    chosen = [f"{prefix}/svc0:4.2.0", f"{prefix}/svc1:4.2.0"]
    for image in chosen:
        waiting.locator(f'input[name=image][value="{image}"]').check()
    assert waiting.locator("[data-selected-count]").inner_text() == "2 selected"
    screenshot(page, "board-selected")
    page.locator("#promote-selected-devdocker").click()
    page.wait_for_url("**/registries/devdocker/promote-selected?*")
    assert sorted(page.locator("#selected-images li").all_inner_texts()) == chosen
    page.get_by_label("Comment").fill("From the board")
    page.locator("#batch-submit").click()
    page.wait_for_url("**/promotions/batches/*/")
    page.locator('#batch-progress[data-status="succeeded"]').wait_for(timeout=120_000)

    promoted = HistoryEvent.objects.filter(action="promoted", registry="rcdocker")
    assert sorted(f"{r}:{t}" for r, t in promoted.values_list("repository", "tag")) == chosen
    assert set(promoted.values_list("comment", flat=True)) == {"From the board"}
    page.goto(f"{demo.url}/")  # what was promoted no longer waits
    assert page.locator(f'#waiting-devdocker-rcdocker [data-image="{chosen[0]}"]').count() == 0
