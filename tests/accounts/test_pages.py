"""Administration pages through Django's test client: who may open them, and what they do."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import ApiKey, Privilege, Task
from accounts.permissions import Principal
from tests.support.accounts import grant, make_key, pipeline

pytestmark = pytest.mark.django_db

PAGES = [
    "/administration/",
    "/administration/users-tasks",
    "/administration/tasks",
    "/administration/api-keys",
    "/administration/api-keys/new",
    "/administration/users",
    "/administration/users/new",
    "/administration/groups/new",
]


@pytest.fixture
def regs():
    return pipeline()


@pytest.fixture
def admin(regs):
    return get_user_model().objects.create_superuser("Admin", password="x" * 12)


@pytest.fixture
def admin_client(admin):
    client = Client()
    client.force_login(admin)
    return client


@pytest.mark.parametrize("path", PAGES)
def test_administrators_open_every_page(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 200
    assert b"Administration" in response.content


@pytest.mark.parametrize("path", PAGES)
def test_other_people_get_the_403_page(regs, path):
    bob = get_user_model().objects.create_user("bob", password="x" * 12)
    grant("Manage Feed", user=bob)
    client = Client()
    client.force_login(bob)
    response = client.get(path)
    assert response.status_code == 403
    assert b"permission" in response.content
    # A signed-out visitor is sent to sign in, and back here afterwards.
    anonymous = Client().get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/accounts/login/?next={quote(path)}"


def test_a_user_granted_administer_becomes_staff_and_sees_administration(admin_client, regs):
    carol = get_user_model().objects.create_user("carol", password="x" * 12)
    response = admin_client.post(
        "/administration/users-tasks",
        {
            "task": Task.objects.get(name="Administer").pk,
            "principal": f"user:{carol.pk}",
            "registry": "",
            "effect": "grant",
        },
    )
    assert response.status_code == 302
    carol.refresh_from_db()
    assert carol.is_staff
    client = Client()
    client.force_login(carol)
    assert client.get("/administration/tasks").status_code == 200
    assert b'href="/administration/"' in client.get("/").content
    assert client.get("/admin/accounts/task/").status_code == 200  # Django admin too


def test_create_a_custom_task_and_grant_it_on_one_registry(admin_client, regs):
    response = admin_client.post(
        "/administration/tasks",
        {
            "name": "Release Manager",
            "description": "Promotes to production",
            "permissions": ["view", "promote"],
        },
        follow=True,
    )
    assert b"Created the task Release Manager" in response.content
    task = Task.objects.get(name="Release Manager")
    assert task.permissions == ["view", "promote"] and not task.built_in
    dave = get_user_model().objects.create_user("dave", password="x" * 12)
    response = admin_client.post(
        "/administration/users-tasks",
        {
            "task": task.pk,
            "principal": f"user:{dave.pk}",
            "registry": regs["proddocker"].pk,
            "effect": "grant",
        },
        follow=True,
    )
    assert b"Release Manager" in response.content
    assert Principal(user=dave).has("promote", regs["proddocker"])
    assert not Principal(user=dave).has("promote", regs["rcdocker"])


def test_built_in_tasks_cannot_be_changed_or_deleted(admin_client, regs):
    task = Task.objects.get(name="Publish Packages")
    admin_client.post(f"/administration/tasks/{task.pk}/delete")
    admin_client.post(
        f"/administration/tasks/{task.pk}/edit", {"name": "x", "permissions": ["administer"]}
    )
    task.refresh_from_db()
    assert task.name == "Publish Packages" and task.permissions == ["view", "publish"]


def test_task_names_are_unique_and_need_a_permission(admin_client, regs):
    response = admin_client.post(
        "/administration/tasks", {"name": "Publish Packages", "permissions": ["view"]}
    )
    assert response.status_code == 400 and b"already exists" in response.content
    response = admin_client.post("/administration/tasks", {"name": "Nothing"})
    assert response.status_code == 400 and b"This field is required" in response.content


def test_privileges_for_groups_and_anonymous_and_removal(admin_client, regs):
    admin_client.post("/administration/groups/new", {"name": "qa"})
    from django.contrib.auth.models import Group

    qa = Group.objects.get(name="qa")
    view = Task.objects.get(name="View & Download Packages")
    admin_client.post(
        "/administration/users-tasks",
        {"task": view.pk, "principal": f"group:{qa.pk}", "registry": "", "effect": "restrict"},
    )
    admin_client.post(
        "/administration/users-tasks",
        {
            "task": view.pk,
            "principal": "anonymous",
            "registry": regs["devdocker"].pk,
            "effect": "grant",
        },
    )
    assert Privilege.objects.filter(group=qa, effect="restrict", registry=None).exists()
    anon = Privilege.objects.get(anonymous=True)
    page = admin_client.get("/administration/users-tasks").content.decode()
    assert "Anonymous" in page and "qa" in page and "Restrict" in page
    admin_client.post(f"/administration/privileges/{anon.pk}/remove")
    assert not Privilege.objects.filter(anonymous=True).exists()


def test_feed_key_is_shown_once(admin_client, regs):
    response = admin_client.post(
        "/administration/api-keys/new",
        {
            "name": "ci",
            "kind": "feed",
            "registries": [regs["devdocker"].pk],
            "permissions": ["view", "publish"],
        },
    )
    assert response.status_code == 302
    key = ApiKey.objects.get(name="ci")
    page = admin_client.get(response["Location"])
    html = page.content.decode()
    assert page["Cache-Control"] == "no-store"
    assert key.key_prefix in html and "only time" in html
    start = html.index(key.key_prefix)
    raw = html[start : start + 46]
    from accounts.auth.keys import api_key_authenticate, key_hash

    assert key_hash(raw) == key.key_hash and api_key_authenticate(raw) == key
    again = admin_client.get(response["Location"]).content.decode()
    assert raw not in again and "cannot be shown again" in again
    assert raw not in admin_client.get("/administration/api-keys").content.decode()


def test_feed_key_needs_registries_and_permissions(admin_client, regs):
    response = admin_client.post("/administration/api-keys/new", {"name": "ci", "kind": "feed"})
    assert response.status_code == 400
    assert b"needs at least one registry" in response.content
    assert not ApiKey.objects.exists()


def test_revoke_a_key_from_the_list(admin_client, regs):
    key, _ = make_key(ApiKey.Kind.SYSTEM, name="old-ci")
    admin_client.post(f"/administration/api-keys/{key.pk}/revoke")
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert b"Revoked" in admin_client.get("/administration/api-keys").content


def test_create_a_user_who_can_sign_in(admin_client, regs):
    response = admin_client.post(
        "/administration/users/new",
        {
            "username": "erin",
            "email": "erin@example.com",
            "password1": "a long password 1",
            "password2": "a long password 1",
        },
    )
    assert response.status_code == 302
    assert Client().login(username="erin", password="a long password 1")


def test_set_a_password_and_deactivate(admin_client, regs):
    frank = get_user_model().objects.create_user("frank", password="x" * 12)
    admin_client.post(
        f"/administration/users/{frank.pk}",
        {"email": "", "is_active": "on", "password": "another long password"},
    )
    assert Client().login(username="frank", password="another long password")
    admin_client.post(f"/administration/users/{frank.pk}", {"email": ""})
    frank.refresh_from_db()
    assert not frank.is_active


def test_history_is_read_only_in_django_admin(admin_client, regs):
    assert admin_client.get("/admin/registries/historyevent/").status_code == 200
    assert admin_client.get("/admin/registries/historyevent/add/").status_code == 403
    assert admin_client.get("/admin/accounts/apikey/add/").status_code == 403
    for model in ("registry", "repository", "tag", "promotion"):
        assert admin_client.get(f"/admin/registries/{model}/").status_code == 200
    for model in ("task", "privilege", "apikey"):
        assert admin_client.get(f"/admin/accounts/{model}/").status_code == 200


def test_api_key_admin_never_shows_the_hash(admin_client, regs):
    key, _ = make_key(ApiKey.Kind.SYSTEM)
    page = admin_client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    assert key.key_hash not in page


def test_system_key_limited_to_one_area_is_listed_with_it(admin_client, regs):
    form = admin_client.get("/administration/api-keys/new").content.decode()
    assert 'value="promotions"' in form and "none = full control" in form

    response = admin_client.post(
        "/administration/api-keys/new",
        {
            "name": "release-bot",
            "kind": "system",
            "areas": ["promotions"],
            # Ignored for a system key, as the registries of a feed key are.
            "permissions": ["view"],
        },
    )

    assert response.status_code == 302
    key = ApiKey.objects.get(name="release-bot")
    assert key.areas == ["promotions"]
    assert "API areas: promotions" in admin_client.get(response["Location"]).content.decode()
    make_key(ApiKey.Kind.SYSTEM, name="root-bot")
    page = admin_client.get("/administration/api-keys").content.decode()
    assert "API areas: promotions" in _row(page, "release-bot")
    assert "full control" not in _row(page, "release-bot")
    assert "full control" in _row(page, "root-bot")


def _row(page: str, name: str) -> str:
    """The table row of the key called `name` on the API Keys page."""
    [row] = [r for r in page.split("<tr>") if f'<span class="primary">{name}</span>' in r]
    return row


def test_areas_checked_for_another_kind_of_key_are_ignored(admin_client, regs):
    response = admin_client.post(
        "/administration/api-keys/new",
        {
            "name": "ci",
            "kind": "feed",
            "registries": [regs["devdocker"].pk],
            "permissions": ["view"],
            "areas": ["feeds"],
        },
    )
    assert response.status_code == 302
    assert ApiKey.objects.get(name="ci").permissions == ["view"]


def test_system_key_limited_to_areas_is_no_administrator_on_pages(regs):
    _, limited = make_key(ApiKey.Kind.SYSTEM, areas=["promotions", "feeds", "api-keys"])
    _, full = make_key(ApiKey.Kind.SYSTEM)
    assert Client().get("/administration/api-keys", HTTP_X_APIKEY=limited).status_code == 403
    assert Client().get("/administration/api-keys", HTTP_X_APIKEY=full).status_code == 200
