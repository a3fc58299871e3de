"""Every page in the real Chromium, checked by axe-core: light and dark, desktop and phone.

One browser, one page per person, reused: each page is loaded once and checked in the four
combinations (1280×900 and 390×844, light and dark) by resizing and switching the colour
scheme in place. A page must have no axe violation (WCAG 2.1 A/AA and best practices) and
must not be wider than the screen.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from accounts.models import ApiKey, Privilege, Task
from accounts.permissions import Principal
from registries.models import Promotion, Registry, Tag
from registries.services.batches import Selection, batch_request
from registries.services.promotions import promotion_request
from tests.accounts.helpers import make_key
from tests.browser_support import login, screenshot
from tests.conftest import PASSWORD, user_with, wait_for
from tests.support.axe import axe_install, axe_violations
from tests.support.images import push_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP, PHONE = (1280, 900), (390, 844)
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
SCHEMES = ("light", "dark")


@pytest.fixture(scope="session")
def axe_script():
    """axe.min.js of the pinned axe-core (npm installs it into .cache/ once)."""
    return axe_install()


@pytest.fixture
def world(demo, admin_creds, unique_repo, tmp_path):
    """Something on every page: an image promoted twice (so it can be rolled back), a failed
    promotion, a custom task, a group, privileges, API keys, and a limited user."""
    admin = Principal(user=get_user_model().objects.get(username="Admin"))
    dev, rc = Registry.objects.get(name="devdocker"), Registry.objects.get(name="rcdocker")
    promotions = []
    for seed in (31, 32):
        push_image(
            demo.hostport,
            f"devdocker/{unique_repo}",
            "1.0",
            creds=admin_creds,
            tmp_path=tmp_path / str(seed),
            seed=seed,
            labels={"org.opencontainers.image.source": "https://example.org/team/app"},
        )
        assert wait_for(
            lambda s=seed: Tag.objects.filter(repository__name=unique_repo, name="1.0").exists()
        )
        promotions.append(
            promotion_request(
                source=dev,
                repository=unique_repo,
                tag="1.0",
                target=rc,
                actor=admin,
                comment="Ready for testing",
            )
        )
    for p in promotions:
        p.refresh_from_db()
        assert p.status == "succeeded", p.error
    failed = Promotion.objects.create(
        source=dev,
        target=rc,
        repository=unique_repo,
        tag="1.0",
        digest=promotions[-1].digest,
        actor="Admin",
        status=Promotion.Status.FAILED,
        error="The target registry refused the upload: denied (simulated).",
    )
    task = Task.objects.create(name="Release Manager", permissions=["view", "promote"])
    limited = user_with("View & Download Packages", username="lena")
    Privilege.objects.create(
        task=Task.objects.get(name="Promote Packages"), user=limited, registry=rc
    )
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="release")
    group.user_set.add(limited)
    privilege = Privilege.objects.create(task=task, group=group, registry=rc)
    key, _ = make_key(ApiKey.Kind.FEED, registries=[dev], permissions=["view"], name="ci-dev")
    # A batch: one image already promoted (nothing new to do), one refused (no such tag).
    batch = batch_request(
        source=dev,
        target=rc,
        selection=Selection.of(images=[f"{unique_repo}:1.0", f"{unique_repo}:9.9"]),
        actor=admin,
    )
    return {
        "batch": batch,
        "repo": unique_repo,
        "promotion": promotions[-1],
        "failed": failed,
        "task": task,
        "group": group,
        "privilege": privilege,
        "key": key,
        "limited": limited,
    }


class Checker:
    """Runs axe and the width check in the four combinations; collects every problem."""

    def __init__(self, page, script, who: str) -> None:
        self.page, self.script, self.who = page, script, who
        self.problems: list[str] = []
        self.checked: list[str] = []

    def goto(self, url: str) -> None:
        self.page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
        self.page.emulate_media(color_scheme="light", reduced_motion="reduce")
        self.page.goto(url)

    def check(self, name: str, *, shots: bool = False) -> None:
        self.checked.append(name)
        for size, (width, height) in VIEWPORTS.items():
            self.page.set_viewport_size({"width": width, "height": height})
            for scheme in SCHEMES:
                self.page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
                where = f"{self.who} · {name} · {size} · {scheme}"
                for v in axe_violations(self.page, self.script):
                    nodes = "\n      ".join(v["nodes"])
                    self.problems.append(
                        f"{where}: {v['id']} ({v['impact']}) {v['help']}\n      {nodes}"
                    )
                scroll, inner = self.page.evaluate(
                    "() => [document.documentElement.scrollWidth, window.innerWidth]"
                )
                if scroll > inner:
                    self.problems.append(f"{where}: {scroll} px wide in a {inner} px window")
                if shots:
                    slug = re.sub(r"[^a-z0-9]+", "-", f"{self.who} {name} {size} {scheme}".lower())
                    screenshot(self.page, f"a11y-{slug.strip('-')}")
        self.page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
        self.page.emulate_media(color_scheme="light", reduced_motion="reduce")

    def dialog(self, selector: str) -> None:
        self.page.locator(selector).wait_for(state="visible")

    def close_dialog(self) -> None:
        self.page.keyboard.press("Escape")
        self.page.locator("dialog.modal[open]").wait_for(state="detached")

    def open_menu_item(self, item: str) -> None:
        self.page.locator("#tag-actions summary").click()
        self.page.locator(item).click()


@pytest.mark.slow
def test_every_page_passes_axe_and_fits_the_screen(browser, page, world, demo, axe_script):
    url, repo = demo.url, world["repo"]
    tag = f"{url}/registries/devdocker/images/{repo}:1.0"
    rc_tag = f"{url}/registries/rcdocker/images/{repo}:1.0"
    problems: list[str] = []

    # --- Admin -----------------------------------------------------------------------------
    login(page, url, "Admin", PASSWORD)
    admin = Checker(page, axe_script, "Admin")
    pages = [
        ("pipeline", "/", True),
        ("registries", "/registries/", True),
        ("audit", "/audit/", True),
        ("registry devdocker", "/registries/devdocker/", True),
        ("registry proddocker", "/registries/proddocker/", False),
        ("repository", f"/registries/devdocker/images/{repo}", False),
        ("tag overview", f"/registries/devdocker/images/{repo}:1.0", True),
        ("tag history", f"/registries/rcdocker/images/{repo}:1.0?tab=history", True),
        ("promote page", f"/registries/devdocker/images/{repo}:1.0/promote", False),
        ("promotion detail", f"/promotions/{world['promotion'].pk}/", True),
        ("failed promotion", f"/promotions/{world['failed'].pk}/", False),
        ("promotions", "/promotions/", True),
        ("batch", f"/promotions/batches/{world['batch'].pk}/", True),
        ("promote selected", f"/registries/devdocker/promote-selected?image={repo}:1.0", False),
        ("roll back page", f"/registries/rcdocker/images/{repo}:1.0/rollback", False),
        ("manage feed", "/registries/devdocker/manage", False),
        ("new registry", "/registries/new", False),
        ("administration", "/administration/", False),
        ("users & tasks", "/administration/users-tasks", True),
        ("tasks", "/administration/tasks", False),
        ("task form", f"/administration/tasks/{world['task'].pk}/edit", False),
        ("api keys", "/administration/api-keys", True),
        ("api key form", "/administration/api-keys/new", False),
        ("api key shown again", f"/administration/api-keys/{world['key'].pk}/created", False),
        ("users", "/administration/users", False),
        ("user form", "/administration/users/new", False),
        ("user edit", f"/administration/users/{world['limited'].pk}", False),
        ("group form", "/administration/groups/new", False),
        ("revoke key confirm", f"/administration/api-keys/{world['key'].pk}/revoke", False),
        (
            "remove privilege confirm",
            f"/administration/privileges/{world['privilege'].pk}/remove",
            False,
        ),
        ("api docs", "/api/docs", False),
        ("404", "/registries/no-such-registry/", False),
    ]
    for name, path, shots in pages:
        admin.goto(url + path)
        admin.check(name, shots=shots)

    # Dialogs, opened the way a person opens them.
    admin.goto(tag)
    admin.open_menu_item("#promote-action")
    admin.dialog("dialog#promote-dialog")
    admin.check("promote dialog", shots=True)
    admin.close_dialog()

    admin.goto(tag)
    admin.open_menu_item("#promote-action")
    admin.dialog("dialog#promote-dialog")
    page.locator("#promote-preview").click()
    admin.dialog("dialog#promote-dialog #preview")
    admin.check("promote dialog preview", shots=True)
    admin.close_dialog()

    admin.goto(f"{url}/registries/devdocker/promote-selected?image={repo}:1.0")
    page.locator("#batch-preview").click()
    page.locator("#preview").wait_for()
    admin.check("promote selected preview", shots=True)

    admin.goto(rc_tag)
    admin.open_menu_item("#rollback-action")
    admin.dialog("dialog#rollback-dialog")
    admin.check("roll back dialog")
    admin.close_dialog()

    admin.goto(f"{url}/promotions/")
    page.evaluate(
        "url => htmx.ajax('GET', url, {target: '#modal-root'})",
        f"/promotions/{world['failed'].pk}/?partial=dialog",
    )
    admin.dialog("dialog#promote-dialog #dialog-run-again")
    admin.check("failed promotion dialog", shots=True)
    admin.close_dialog()

    admin.goto(f"{url}/administration/api-keys")
    page.get_by_role("link", name="Revoke ci-dev").click()
    admin.dialog("dialog#confirm-dialog")
    admin.check("revoke key dialog")
    admin.close_dialog()

    # The key's secret, shown once after creating it.
    admin.goto(f"{url}/administration/api-keys/new")
    page.get_by_label("Name").fill("personal")
    page.get_by_label("Personal: acts as a user").check()
    page.get_by_role("button", name="Create key").click()
    page.locator("#api-key-secret").wait_for()
    admin.check("api key created", shots=True)
    problems += admin.problems

    # --- A limited user: views everything, promotes into rcdocker only ----------------------
    context = browser.new_context(viewport={"width": DESKTOP[0], "height": DESKTOP[1]})
    context.set_default_timeout(15_000)
    try:
        lena_page = context.new_page()
        login(lena_page, url, "lena", PASSWORD)
        lena = Checker(lena_page, axe_script, "lena")
        for name, path in [
            ("pipeline", "/"),
            ("registries", "/registries/"),
            ("audit", "/audit/"),
            ("registry", "/registries/devdocker/"),
            ("repository", f"/registries/devdocker/images/{repo}"),
            ("tag overview", f"/registries/devdocker/images/{repo}:1.0"),
            ("tag history", f"/registries/rcdocker/images/{repo}:1.0?tab=history"),
            ("promotion detail", f"/promotions/{world['promotion'].pk}/"),
            ("promotions", "/promotions/"),
            ("api docs", "/api/docs"),
            ("403 administration", "/administration/"),
            ("403 manage feed", "/registries/devdocker/manage"),
            ("404", f"/registries/devdocker/images/{repo}:no-such-tag"),
        ]:
            lena.goto(url + path)
            lena.check(name, shots=name in {"403 administration"})
        lena.goto(tag)
        lena.open_menu_item("#promote-action")
        lena.dialog("dialog#promote-dialog")
        lena.check("promote dialog")
        lena.close_dialog()
        problems += lena.problems
        lena_checked = lena.checked

        # --- Signed out: the sign-in page -------------------------------------------------
        context.clear_cookies()
        visitor = Checker(lena_page, axe_script, "signed out")
        visitor.goto(f"{url}/accounts/login/?next=/administration/")
        visitor.check("sign in", shots=True)
        problems += visitor.problems
    finally:
        context.close()

    assert len(admin.checked) >= 37 and len(lena_checked) >= 12
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_the_theme_toggle_switches_and_is_remembered(demo, page):
    def background() -> str:
        return page.evaluate("() => getComputedStyle(document.body).backgroundColor")

    light, dark = "rgb(246, 247, 249)", "rgb(13, 17, 23)"
    page.emulate_media(color_scheme="light")
    page.goto(f"{demo.url}/accounts/login/")
    assert background() == light
    toggle = page.get_by_role("button", name="Dark theme")
    assert toggle.get_attribute("aria-pressed") == "false"

    toggle.click()
    assert background() == dark and toggle.get_attribute("aria-pressed") == "true"
    page.reload()
    assert background() == dark, "the choice is remembered"

    page.emulate_media(color_scheme="dark")
    toggle.click()
    page.reload()
    assert background() == light, "a chosen light theme beats the system's dark"
    page.evaluate("() => localStorage.removeItem('promoter-theme')")
    page.reload()
    assert background() == dark, "without a choice the system setting counts"
