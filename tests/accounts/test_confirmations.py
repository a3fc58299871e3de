"""Every destructive action on Administration asks first, with or without JavaScript."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import ApiKey, Privilege, Task
from tests.accounts.helpers import grant, make_key, pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    pipeline()
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("Admin", password="x" * 12))
    return client


@pytest.fixture
def things():
    pipeline()  # the built-in tasks: a transactional test before this one flushed them
    bob = get_user_model().objects.create_user("bob", password="x" * 12)
    group = Group.objects.create(name="release")
    task = Task.objects.create(name="Release Manager", permissions=["view", "promote"])
    privilege = grant("Publish Packages", user=bob)
    key, _ = make_key(ApiKey.Kind.PERSONAL, user=bob, name="bob-ci")
    return {"group": group, "task": task, "privilege": privilege, "key": key}


def cases(things):
    return [
        (
            f"/administration/privileges/{things['privilege'].pk}/remove",
            "Remove privilege",
            "/administration/users-tasks",
            lambda: not Privilege.objects.filter(pk=things["privilege"].pk).exists(),
        ),
        (
            f"/administration/groups/{things['group'].pk}/delete",
            "Delete group",
            "/administration/users",
            lambda: not Group.objects.filter(pk=things["group"].pk).exists(),
        ),
        (
            f"/administration/api-keys/{things['key'].pk}/revoke",
            "Revoke key",
            "/administration/api-keys",
            lambda: ApiKey.objects.get(pk=things["key"].pk).revoked_at is not None,
        ),
        (
            f"/administration/tasks/{things['task'].pk}/delete",
            "Delete task",
            "/administration/tasks",
            lambda: not Task.objects.filter(pk=things["task"].pk).exists(),
        ),
    ]


def test_the_lists_link_to_a_confirmation_not_to_a_one_click_post(admin_client, things):
    for path, _, list_path, _ in cases(things):
        html = admin_client.get(list_path).content.decode()
        assert f'href="{path}"' in html, path
        assert f'action="{path}"' not in html, path


def test_asking_changes_nothing_and_confirming_does_it(admin_client, things):
    for path, button, list_path, done in cases(things):
        page = admin_client.get(path)
        assert page.status_code == 200
        html = page.content.decode()
        assert f'<form method="post" action="{path}"' in html and button in html
        assert f'href="{list_path}"' in html  # Cancel goes back
        dialog = admin_client.get(path, HTTP_HX_REQUEST="true").content.decode()
        assert dialog.lstrip().startswith("<dialog") and button in dialog
        assert not done(), f"{path}: nothing may happen before confirming"

        answer = admin_client.post(path)
        assert answer.status_code == 302 and answer["Location"] == list_path
        assert done(), path


def test_only_administrators_see_a_confirmation(things):
    bob = Client()
    bob.force_login(get_user_model().objects.get(username="bob"))
    for path, *_ in cases(things):
        assert bob.get(path).status_code == 403
