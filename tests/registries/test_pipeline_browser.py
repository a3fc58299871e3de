"""The pipeline in view, in the real Chromium, on a seeded pipeline (tests/registries/
pipeline_seed.py): the board and its "not yet in" lists, promote from the board, stage
chips, "Where this image is", the whole trail after a re-push, accessories under their
image, the disabled Promote with its reason, the replace warning, the required comment,
the audit page's filters, shareable URL and CSV download, the privilege preview.

Screenshots of each page at 1280×900 and 390×844 go to /tmp/shots/pipeline-*.png.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Privilege
from accounts.permissions import Principal
from registries.models import Promotion, Registry, Tag
from registries.services.policies import policy_update
from tests.browser_support import login, screenshot
from tests.conftest import PASSWORD, user_with
from tests.registries.pipeline_seed import seed_pipeline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def seed(demo, tmp_path):
    # As make run's demo has it: promotions into rc and prod must say why.
    Registry.objects.filter(name__in=["rcdocker", "proddocker"]).update(require_comment=True)
    return seed_pipeline(demo, tmp_path)


def shots(page, name: str) -> None:
    """The page at desktop and phone size (for a person to look at)."""
    screenshot(page, f"pipeline-{name}")
    page.set_viewport_size(PHONE)
    wide, inner = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    screenshot(page, f"pipeline-{name}-phone")
    page.set_viewport_size(DESKTOP)
    assert wide <= inner, f"{name} is {wide} px wide on a {inner} px phone"


def csp_watch(page) -> list[str]:
    """The Content-Security-Policy violations the browser reports on `page` (none allowed:
    no inline script or style)."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return violations


def waiting_images(page, source: str, target: str) -> set[str]:
    rows = page.locator(f"#waiting-{source}-{target} tbody tr")
    return {rows.nth(i).get_attribute("data-image") for i in range(rows.count())}


@pytest.mark.slow
def test_a_release_manager_sees_and_moves_the_pipeline(demo, seed, page, browser):
    violations = csp_watch(page)
    login(page, demo.url, "Admin", PASSWORD)

    # The board: three stages in order, and what waits between them.
    page.goto(demo.url + "/")
    stages = page.locator(".pipeline-stage")
    assert [stages.nth(i).get_attribute("data-registry") for i in range(3)] == [
        "devdocker",
        "rcdocker",
        "proddocker",
    ]
    assert waiting_images(page, "rcdocker", "proddocker") == {
        f"{seed.web}:2.0.1",
        f"{seed.worker}:3.1",
    }
    assert waiting_images(page, "devdocker", "rcdocker") == {
        f"{seed.api}:1.0",
        f"{seed.web}:2.0.1",
    }
    assert "sha256-" not in page.locator("#stage-devdocker").inner_text()
    shots(page, "board")

    # Promote from the board: the dialog says what rc holds now and that it is replaced,
    # and asks for the comment rcdocker requires.
    row = page.locator(f'#waiting-devdocker-rcdocker tr[data-image="{seed.api}:1.0"]')
    row.get_by_role("link", name=re.compile("Promote")).click()
    dialog = page.locator("dialog#promote-dialog")
    dialog.wait_for(state="visible")
    warning = dialog.locator("#target-state-rcdocker")
    assert "Will be replaced" in warning.inner_text()
    assert seed.a1[7:19] in warning.inner_text() and "dana" in warning.inner_text()
    assert "required" in dialog.locator("label[for=id_comment]").inner_text()
    screenshot(page, "pipeline-promote-dialog")
    page.locator("#promote-submit").click()
    error = page.locator("#promote-error")
    error.wait_for(state="visible")
    assert "A comment is required to promote into rcdocker" in error.inner_text()
    screenshot(page, "pipeline-comment-required")
    page.locator("dialog#promote-dialog").get_by_label("Comment").fill("QA asked for the re-push")
    page.locator("#promote-submit").click()
    result = page.locator("#promotion-result")
    result.wait_for(state="visible", timeout=60_000)
    assert "Promoted" in result.inner_text()
    promotion = Promotion.objects.filter(repository=seed.api, status="succeeded").latest("pk")
    assert (promotion.digest, promotion.comment) == (seed.a2, "QA asked for the re-push")
    page.goto(demo.url + "/")
    assert f"{seed.api}:1.0" not in waiting_images(page, "devdocker", "rcdocker")
    assert f"{seed.api}:1.0" in waiting_images(page, "rcdocker", "proddocker")

    # The dialog also says when the digest is already there.
    page.goto(f"{demo.url}/registries/devdocker/images/{seed.worker}:3.1")
    page.locator("#promote-primary").click()
    same = page.locator("dialog#promote-dialog #target-state-rcdocker")
    same.wait_for(state="visible")
    assert "Already there" in same.inner_text()
    page.keyboard.press("Escape")

    # With a policy on rcdocker the board's Promote opens the dialog first, and the dialog
    # shows the policy's checklist next to the replace warning and the required comment.
    admin = Principal(user=get_user_model().objects.get(username="Admin"))
    rc = Registry.objects.get(name="rcdocker")
    policy_update(registry=rc, actor=admin, values={"approvals_required": 1})
    page.goto(demo.url + "/")
    row = page.locator(f'#waiting-devdocker-rcdocker tr[data-image="{seed.web}:2.0.1"]')
    row.get_by_role("link", name=re.compile("Promote")).click()
    dialog.wait_for(state="visible")
    assert dialog.locator("#promote-dialog-title").inner_text() == (
        f"Promote {seed.web}:2.0.1 to rcdocker"
    )
    assert "0 of 1 approvals" in dialog.locator("#policy-checklist").inner_text()
    replaced = dialog.locator("#target-state-rcdocker").inner_text()
    assert "Will be replaced" in replaced and seed.w1[7:19] in replaced
    assert "required" in dialog.locator("label[for=id_comment]").inner_text()
    assert dialog.locator("#promote-submit").inner_text() == "Request promotion"
    screenshot(page, "pipeline-promote-dialog-policy")
    dialog.locator("#promote-submit").click()
    error = page.locator("#promote-error")
    error.wait_for(state="visible")
    assert "A comment is required to promote into rcdocker" in error.inner_text()
    assert "0 of 1 approvals" in page.locator("#policy-checklist").inner_text()
    page.keyboard.press("Escape")
    policy_update(registry=rc, actor=admin, values={"approvals_required": 0})

    # Stage chips and accessories nested under their image, never promotable.
    page.goto(f"{demo.url}/registries/devdocker/images/{seed.worker}")
    cell = page.locator('td[data-tag="3.1"]')
    assert "Signed ✓" in cell.inner_text()
    chips = page.locator("#tag-table tbody tr").first.locator(".stage-chip")
    assert [chips.nth(i).get_attribute("data-held") for i in range(3)] == ["yes", "yes", "no"]
    assert page.locator(f'td[data-tag="{seed.signature_tag}"]').count() == 0
    shots(page, "repository")
    page.locator("#raw-toggle").click()
    raw = page.locator("#tag-table tr", has=page.locator(f'td[data-tag="{seed.signature_tag}"]'))
    raw.wait_for()
    assert "travels with its image" in raw.inner_text()
    assert raw.locator(".row-promote").count() == 0
    screenshot(page, "pipeline-repository-raw")
    page.goto(f"{demo.url}/registries/devdocker/images/{seed.worker}:{seed.signature_tag}")
    assert page.locator("#promote-primary").count() == 0
    assert page.locator("#promote-action").count() == 0
    assert "never promoted on its own" in page.locator("#promote-reason").inner_text()

    # The tag page: where this image is, signature status, and how it arrived.
    page.goto(f"{demo.url}/registries/rcdocker/images/{seed.worker}:3.1")
    where = page.locator("#where li")
    assert [where.nth(i).get_attribute("data-registry") for i in range(where.count())] == [
        "devdocker",
        "rcdocker",
    ]
    assert page.locator("#signature-status").inner_text() == "Signed ✓"
    assert page.locator("#arrival").inner_text().startswith("Promoted from devdocker")
    assert "Signed" in page.locator("#accessories").inner_text()
    shots(page, "tag")
    page.locator("#history-tab").click()
    page.locator("#history tbody tr").first.wait_for()
    assert "Signature of" in page.locator("#history").inner_text()
    assert (
        "travelled with the promotion from devdocker to rcdocker"
        in page.locator("#history").inner_text()
    )

    # Annotations with links, the created date, copy buttons on layer digests.
    page.goto(f"{demo.url}/registries/proddocker/images/{seed.api}:1.0")
    source = page.locator('a[data-fact="source"]')
    assert source.get_attribute("href") == "https://github.com/example/api"
    revision = page.locator('a[data-fact="revision"]')
    assert revision.get_attribute("href") == (
        "https://github.com/example/api/commit/0123456789abcdef0123456789abcdef01234567"
    )
    assert "2026-03-04" in page.locator("#image-created").inner_text()
    assert page.locator("table.layers .btn-copy").count() >= 1
    assert page.locator("#arrival").inner_text().startswith("Promoted from rcdocker")
    screenshot(page, "pipeline-tag-annotations")

    # The whole trail survives the re-push: dev's api:1.0 points at A2 now, and the
    # promotions of A1 to rc and prod are still on its History tab.
    page.goto(f"{demo.url}/registries/devdocker/images/{seed.api}:1.0?tab=history")
    rows = page.locator("#history tbody tr")
    trail = [
        (
            rows.nth(i).get_attribute("data-action"),
            rows.nth(i).get_attribute("data-registry"),
            rows.nth(i).get_attribute("data-digest"),
        )
        for i in range(rows.count())
    ]
    assert ("promoted", "rcdocker", seed.a1) in trail
    assert ("promoted", "proddocker", seed.a1) in trail
    assert ("promoted", "rcdocker", seed.a2) in trail
    assert page.locator("#history tr.trail-current .badge-current").count() >= 1
    assert "from rcdocker to proddocker" in page.locator("#history").inner_text()
    shots(page, "trail")

    # A disabled Promote says why: eve holds Promote Packages on devdocker only.
    eve = browser.new_context(viewport=DESKTOP)
    try:
        other = eve.new_page()
        login(other, demo.url, "eve", PASSWORD)
        other.goto(f"{demo.url}/registries/devdocker/images/{seed.web}:2.0.1")
        button = other.locator("#promote-primary")
        assert button.is_disabled()
        assert "Promote to rcdocker" in button.inner_text()
        assert other.locator("#promote-reason").inner_text() == (
            "Needs Promote Packages on rcdocker"
        )
        shots(other, "disabled-promote")
        other.goto(demo.url + "/")
        board_button = other.locator("#waiting-devdocker-rcdocker .board-promote").first
        assert board_button.is_disabled()
        assert (
            "needs Promote Packages on rcdocker"
            in other.locator("#waiting-devdocker-rcdocker .promote-reason").inner_text()
        )
    finally:
        eve.close()

    # Where nothing needs asking (no comment, no policy), the board promotes in one click.
    Registry.objects.filter(name="rcdocker").update(require_comment=False)
    page.goto(demo.url + "/")
    row = page.locator(f'#waiting-devdocker-rcdocker tr[data-image="{seed.web}:2.0.1"]')
    row.get_by_role("button", name=re.compile("Promote")).click()
    result = page.locator("#promotion-result")
    result.wait_for(state="visible", timeout=60_000)
    assert "Promoted" in result.inner_text()
    assert (
        Tag.objects.get(
            repository__registry__name="rcdocker", repository__name=seed.web, name="2.0.1"
        ).digest
        == seed.w2
    )
    page.goto(demo.url + "/")
    assert f"{seed.web}:2.0.1" not in waiting_images(page, "devdocker", "rcdocker")
    assert violations == []


@pytest.mark.slow
def test_the_audit_page_filters_by_each_filter_shares_its_url_and_downloads_matching_csv(
    demo, seed, page, browser, tmp_path
):
    violations = csp_watch(page)
    login(page, demo.url, "Admin", PASSWORD)
    page.goto(demo.url + "/audit/")
    assert page.locator("#audit tbody tr").count() >= 10
    shots(page, "audit")

    def apply(**values) -> list[dict]:
        page.goto(demo.url + "/audit/")
        for name, value in values.items():
            field = page.locator(f"#f-{name}")
            if field.evaluate("e => e.tagName") == "SELECT":
                field.select_option(value)
            else:
                field.fill(value)
        page.locator("#apply-filters").click()
        page.wait_for_load_state()
        query = parse_qs(urlparse(page.url).query)
        for name, value in values.items():
            assert query[name] == [value], (name, page.url)
        rows = page.locator("#audit tbody tr")
        return [
            {
                "kind": rows.nth(i).get_attribute("data-kind"),
                "action": rows.nth(i).get_attribute("data-action"),
                "status": rows.nth(i).get_attribute("data-status"),
                "text": rows.nth(i).inner_text(),
            }
            for i in range(rows.count())
        ]

    promoted = apply(action="promoted")
    assert promoted and {r["action"] for r in promoted} == {"promoted"}
    failed = apply(status="failed")
    assert len(failed) == 1 and seed.failed_digest[:19] in failed[0]["text"]
    from_rc = apply(source="rcdocker")
    assert from_rc and all("Promoted from rcdocker to proddocker" in r["text"] for r in from_rc)
    into_prod = apply(target="proddocker")
    assert into_prod and all("proddocker" in r["text"] for r in into_prod)
    by_dana = apply(user="dana")
    assert by_dana and all("\tdana\t" in r["text"] for r in by_dana)
    of_web = apply(repository=seed.web)
    assert of_web and all(seed.web in r["text"] for r in of_web)
    of_tag = apply(tag="3.1")
    assert of_tag and all(f"{seed.worker}:3.1" in r["text"] for r in of_tag)
    of_digest = apply(digest=seed.w1[:20])
    assert of_digest and all(seed.web in r["text"] for r in of_digest)
    old = apply(until=seed.old_day.isoformat())
    assert len(old) == 1 and seed.old_repository in old[0]["text"]
    newer = apply(since=(seed.old_day + dt.timedelta(days=1)).isoformat())
    assert len(newer) >= 10 and all(seed.old_repository not in r["text"] for r in newer)
    configuration = apply(action="configuration")
    assert [r["kind"] for r in configuration] == ["configuration"]

    # Several filters at once, then the URL alone (a colleague opening the link).
    promoted_into_rc = apply(action="promoted", target="rcdocker", user="Admin")
    shared = page.url
    assert shared in page.locator(".audit-share").inner_text()
    shots(page, "audit-filtered")
    colleague = browser.new_context(viewport=DESKTOP)
    try:
        tab = colleague.new_page()
        login(tab, demo.url, "Admin", PASSWORD)
        tab.goto(shared)
        assert tab.locator("#f-action").input_value() == "promoted"
        assert tab.locator("#f-target").input_value() == "rcdocker"
        assert tab.locator("#audit tbody tr").count() == len(promoted_into_rc)
    finally:
        colleague.close()

    # The CSV download holds the same rows as the page.
    with page.expect_download() as download:
        page.locator("#export-csv").click()
    path = tmp_path / "audit.csv"
    download.value.save_as(path)
    with path.open(newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert len(exported) == len(promoted_into_rc)
    assert {(r["action"], r["registry"], r["actor"]) for r in exported} == {
        ("promoted", "rcdocker", "Admin")
    }
    table = page.locator("#audit tbody tr")
    for i, row in enumerate(exported):
        assert row["repository"] in table.nth(i).inner_text()
        assert row["digest"][:19] in table.nth(i).inner_text()

    # Someone who may view only proddocker sees its events and no configuration.
    user_with("View & Download Packages", registry="proddocker", username="lim")
    viewer = browser.new_context(viewport=DESKTOP)
    try:
        tab = viewer.new_page()
        login(tab, demo.url, "lim", PASSWORD)
        tab.goto(demo.url + "/audit/")
        rows = tab.locator("#audit tbody tr")
        assert rows.count() >= 1
        for i in range(rows.count()):
            assert rows.nth(i).get_attribute("data-kind") == "history"
            assert "proddocker" in rows.nth(i).inner_text()
    finally:
        viewer.close()
    assert violations == []


def test_the_privilege_form_previews_what_it_would_allow(demo, page):
    user_with("View & Download Packages", username="dana")
    login(page, demo.url, "Admin", PASSWORD)
    page.goto(demo.url + "/administration/users-tasks")
    form = page.locator("#privilege-form")
    form.get_by_label("Task").select_option(label="Promote Packages")
    form.get_by_label("User or group").select_option(label="dana")
    form.get_by_label("Registry").select_option(label="rcdocker")
    preview = page.locator("#privilege-preview")
    preview.get_by_text("dana can promote devdocker → rcdocker").wait_for()
    shots(page, "privilege-preview")
    form.get_by_role("button", name="Add privilege").click()
    page.wait_for_url("**/administration/users-tasks")
    assert Privilege.objects.filter(
        user__username="dana", registry__name="rcdocker", task__name="Promote Packages"
    ).exists()
