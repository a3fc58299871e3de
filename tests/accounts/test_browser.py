"""In the real Chromium: sign in, create a custom task, grant it, create a feed key once."""

from __future__ import annotations

import re

import pytest

from accounts.models import ApiKey, Privilege, Task
from tests.browser_support import login, screenshot
from tests.support.accounts import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(demo_db, live_server):
    """The live portal with the make-run setup (no registry needed for these pages)."""
    return live_server


def test_sign_in_page_rejects_a_wrong_password(page, site):
    page.goto(f"{site.url}/accounts/login/")
    screenshot(page, "login")
    page.get_by_label("User name").fill("Admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").filter(has_text="not correct").is_visible()


@pytest.mark.slow
def test_administrator_creates_task_grants_it_and_makes_a_feed_key(page, site):
    url = site.url
    login(page, url, "Admin", PASSWORD)
    page.get_by_role("link", name="Administration").click()
    page.wait_for_url(f"{url}/administration/")
    screenshot(page, "administration")

    # Customize Tasks: a custom task from checkboxes.
    page.get_by_role("link", name="Customize Tasks").click()
    page.get_by_label("Name").fill("Release Manager")
    page.get_by_label("View & Download").check()
    page.get_by_label("Promote (accept promotions)").check()
    page.get_by_role("button", name="Create task").click()
    assert page.get_by_text("Created the task Release Manager").is_visible()
    assert page.locator("#tasks").get_by_text("Release Manager").is_visible()
    screenshot(page, "tasks")
    task = Task.objects.get(name="Release Manager")
    assert task.permissions == ["view", "promote"]

    # Users & Tasks: grant it to Admin... to a new group on proddocker only.
    page.goto(f"{url}/administration/groups/new")
    page.get_by_label("Group name").fill("release")
    page.get_by_role("button", name="Create group").click()
    page.goto(f"{url}/administration/users-tasks")
    page.get_by_label("Task").select_option(label="Release Manager")
    page.get_by_label("User or group").select_option(label="release")
    page.get_by_label("Registry").select_option(label="proddocker")
    page.get_by_role("button", name="Add privilege").click()
    row = page.locator("#privileges tr", has_text="Release Manager")
    assert row.get_by_text("proddocker").is_visible()
    screenshot(page, "users-tasks")
    privilege = Privilege.objects.get(task=task)
    assert privilege.group.name == "release" and privilege.registry.name == "proddocker"

    # API Keys: a feed key, shown once.
    page.goto(f"{url}/administration/api-keys")
    screenshot(page, "api-keys-empty")
    page.get_by_role("link", name="Create API key").first.click()
    page.get_by_label("Name").fill("ci-dev")
    page.get_by_label("Feed: chosen registries and permissions only").check()
    page.locator("#api-key-form").get_by_label("devdocker").check()
    page.locator("#api-key-form").get_by_label("Publish (push)").check()
    page.locator("#api-key-form").get_by_label("View & Download").check()
    screenshot(page, "api-key-form")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#api-key-secret pre").inner_text().strip()
    assert re.fullmatch(r"pk_[A-Za-z0-9_-]{40,}", secret)
    screenshot(page, "api-key-created")
    key = ApiKey.objects.get(name="ci-dev")
    assert key.kind == "feed" and key.permissions == ["view", "publish"]
    assert [r.name for r in key.registries.all()] == ["devdocker"]

    page.reload()
    assert "cannot be shown again" in page.content()
    assert secret not in page.content()
    page.goto(f"{url}/administration/api-keys")
    assert secret not in page.content()
    assert page.locator("#api-keys").get_by_text("ci-dev").is_visible()
    screenshot(page, "api-keys")

    page.goto(f"{url}/administration/users")
    screenshot(page, "users")
