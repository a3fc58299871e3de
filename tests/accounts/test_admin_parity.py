"""The Django admin, the Administration / Manage Feed pages and the API make the same decision
for the same change: the same rows afterwards, the same refusal message, and an audit event
for each accepted change and none for a refused one.

Each test is parametrized over the adapters that offer the change ("admin", "page", "api")
and compares what a person observes with ONE expectation shared by all of them. The acting
person is `boss`, an administrator through an Administer privilege (not a superuser), so that
"leave nobody able to administer" can be reached.
"""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import ApiKey, AuditEvent, Privilege, Task
from accounts.services import LAST_ADMINISTRATOR, staff_sync
from registries.models import REGISTRY_NAME_VALIDATOR, Promotion, Registry
from tests.accounts.helpers import grant, make_key, pipeline

pytestmark = pytest.mark.django_db

PASSWORD = "a long enough password"
User = get_user_model()


# --- fixtures and helpers ---------------------------------------------------------------------
@pytest.fixture
def regs() -> dict[str, Registry]:
    return pipeline()


@pytest.fixture
def boss(regs):
    """The only administrator: Administer granted on all registries (not a superuser)."""
    user = User.objects.create_user("boss", password=PASSWORD)
    grant("Administer", user=user)
    staff_sync([user])
    user.refresh_from_db()
    assert user.is_staff  # Django's admin lets him in because he holds Administer
    return user


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def boss_client(boss) -> Client:
    return client_for(boss)


def text(response) -> str:
    """What a person reads on the answer (entities decoded; JSON as it is)."""
    return html.unescape(response.content.decode())


def says(response, message: str) -> bool:
    """Whether the answer carries `message` (the admin capitalizes a message's first letter)."""
    shown = text(response)
    return message in shown or message[:1].upper() + message[1:] in shown


def audit() -> list[tuple[str, str, str]]:
    return list(AuditEvent.objects.order_by("id").values_list("action", "object_repr", "actor"))


def admin_action(client, model: str, action: str, pks, **extra):
    """A bulk action of the Django admin's change list, confirmed (`post=yes`)."""
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], "post": "yes", **extra}
    return client.post(f"/admin/{model}/", data, follow=True)


def admin_delete(client, model: str, pk):
    return client.post(f"/admin/{model}/{pk}/delete/", {"post": "yes"}, follow=True)


ADAPTERS_ALL = ["admin", "page", "api"]
ADAPTERS_UI = ["admin", "page"]


# --- registries -------------------------------------------------------------------------------
def registry_row(name: str):
    registry = Registry.objects.filter(name=name).select_related("promote_to").first()
    if registry is None:
        return None
    promote_to = registry.promote_to.name if registry.promote_to_id else None
    return (registry.name, registry.usage_type, promote_to, registry.description, registry.active)


def create_registry(adapter: str, client: Client, regs, *, name: str):
    form = {
        "name": name,
        "description": "QA images",
        "usage_type": "validated",
        "promote_to": regs["proddocker"].pk,
        "active": "on",
        "endpoint": "",
        "namespace": "",
        "username": "",
        "password": "",
    }
    if adapter == "admin":
        return client.post("/admin/registries/registry/add/", form, follow=True)
    if adapter == "page":
        return client.post("/registries/new", form, follow=True)
    return client.post(
        "/api/management/feeds/create",
        {
            "name": name,
            "feedType": "docker",
            "description": "QA images",
            "usageType": "validated",
            "promoteTo": "proddocker",
        },
        content_type="application/json",
    )


def update_registry(adapter: str, client: Client, registry: Registry, **changes):
    """Post the registry's form as it stands, with `changes` (model field names)."""
    form = {
        "name": registry.name,
        "description": registry.description,
        "usage_type": registry.usage_type,
        "promote_to": registry.promote_to_id or "",
        "active": "on" if registry.active else "",
        "endpoint": registry.endpoint,
        "namespace": registry.namespace,
        "username": registry.username,
        "password": "",
        **changes,
    }
    if adapter == "admin":
        return client.post(f"/admin/registries/registry/{registry.pk}/change/", form, follow=True)
    if adapter == "page":
        return client.post(f"/registries/{registry.name}/manage", form, follow=True)
    api_names = {"description": "description", "usage_type": "usageType"}
    body = {api_names[k]: v for k, v in changes.items()}
    return client.post(
        f"/api/management/feeds/update/{registry.name}", body, content_type="application/json"
    )


@pytest.mark.parametrize("adapter", ADAPTERS_ALL)
def test_registry_create_is_the_same_everywhere(adapter, boss_client, regs):
    create_registry(adapter, boss_client, regs, name="qa-docker")

    assert registry_row("qa-docker") == ("qa-docker", "validated", "proddocker", "QA images", True)
    assert audit() == [("registry.created", "qa-docker", "boss")]


@pytest.mark.parametrize("adapter", ADAPTERS_ALL)
def test_registry_with_an_invalid_name_is_refused_alike(adapter, boss_client, regs):
    response = create_registry(adapter, boss_client, regs, name="QA Docker")

    assert REGISTRY_NAME_VALIDATOR.message in text(response)
    assert registry_row("QA Docker") is None and Registry.objects.count() == 3
    assert audit() == []


@pytest.mark.parametrize("adapter", ADAPTERS_ALL)
def test_registry_description_change_is_the_same_everywhere(adapter, boss_client, regs):
    update_registry(adapter, boss_client, regs["devdocker"], description="CI pushes here")

    assert registry_row("devdocker")[3] == "CI pushes here"
    [event] = AuditEvent.objects.all()
    assert (event.action, event.object_repr, event.actor) == (
        "registry.updated",
        "devdocker",
        "boss",
    )
    assert event.changes == {
        "description": ["Development builds: CI pushes here.", "CI pushes here"]
    }


@pytest.mark.parametrize("adapter", ADAPTERS_ALL)
def test_manage_feed_only_user_never_changes_the_usage_type(adapter, regs, boss):
    """Manage Feed on devdocker allows changing it, but not its usage type: the API refuses
    with the service's message, the page does not offer the field, the Django admin is for
    administrators only. Everywhere the row stays and nothing is audited."""
    keeper = User.objects.create_user("keeper", password=PASSWORD)
    grant("Manage Feed", user=keeper, registry=regs["devdocker"])
    before = registry_row("devdocker")

    response = update_registry(
        adapter, client_for(keeper), regs["devdocker"], usage_type="validated"
    )

    assert registry_row("devdocker") == before
    assert audit() == []
    if adapter == "api":
        assert response.status_code == 400
        assert "The usage type is chosen when a registry is created" in text(response)
    elif adapter == "admin":
        assert response.redirect_chain[-1][0].startswith("/admin/login/")


@pytest.mark.parametrize("adapter", ["page", "api"])
def test_manage_feed_only_user_changes_the_description_alike(adapter, regs, boss):
    keeper = User.objects.create_user("keeper", password=PASSWORD)
    grant("Manage Feed", user=keeper, registry=regs["devdocker"])

    update_registry(adapter, client_for(keeper), regs["devdocker"], description="Keeper's")

    assert registry_row("devdocker")[3] == "Keeper's"
    assert audit() == [("registry.updated", "devdocker", "keeper")]


def delete_registry(adapter: str, client: Client, registry: Registry):
    if adapter == "admin":
        return admin_delete(client, "registries/registry", registry.pk)
    if adapter == "admin-bulk":
        return admin_action(client, "registries/registry", "delete_selected", [registry.pk])
    return client.post(f"/api/management/feeds/delete/{registry.name}")


@pytest.mark.parametrize("adapter", ["admin", "admin-bulk", "api"])
def test_registry_delete_is_the_same_everywhere(adapter, boss_client, regs):
    delete_registry(adapter, boss_client, regs["devdocker"])

    assert registry_row("devdocker") is None
    assert audit() == [("registry.deleted", "devdocker", "boss")]


@pytest.mark.parametrize("adapter", ["admin", "admin-bulk", "api"])
def test_registry_with_promotions_is_not_deleted_anywhere(adapter, boss_client, regs):
    Promotion.objects.create(
        source=regs["devdocker"],
        target=regs["rcdocker"],
        repository="team/app",
        tag="1.0",
        digest="sha256:" + "a" * 64,
        actor="boss",
        status="succeeded",
    )
    before = Registry.objects.count()

    response = delete_registry(adapter, boss_client, regs["rcdocker"])

    assert says(response, "rcdocker has promotions in its History, which must stay")
    assert Registry.objects.count() == before and registry_row("rcdocker") is not None
    assert audit() == []


# --- tasks ------------------------------------------------------------------------------------
def create_task(adapter: str, client: Client, name: str, permissions=("view", "promote")):
    form = {"name": name, "description": "Promotes to production", "permissions": list(permissions)}
    if adapter == "admin":
        return client.post("/admin/accounts/task/add/", form, follow=True)
    return client.post("/administration/tasks", form, follow=True)


def task_row(name: str):
    task = Task.objects.filter(name=name).first()
    return None if task is None else (task.name, task.permissions, task.built_in)


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_task_create_is_the_same_everywhere(adapter, boss_client, regs):
    create_task(adapter, boss_client, "Release Manager")

    assert task_row("Release Manager") == ("Release Manager", ["view", "promote"], False)
    assert audit() == [("task.created", "Release Manager", "boss")]


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_task_with_a_taken_name_is_refused_alike(adapter, boss_client, regs):
    response = create_task(adapter, boss_client, "publish packages")

    assert "A task called 'publish packages' already exists." in text(response)
    assert task_row("publish packages") is None
    assert audit() == []


def update_task(adapter: str, client: Client, task: Task, **form):
    if adapter == "admin":
        return client.post(f"/admin/accounts/task/{task.pk}/change/", form, follow=True)
    return client.post(f"/administration/tasks/{task.pk}/edit", form, follow=True)


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_task_change_is_the_same_everywhere(adapter, boss_client, regs):
    task = Task.objects.create(name="Release", permissions=["view"])

    update_task(
        adapter,
        boss_client,
        task,
        name="Release Manager",
        description="",
        permissions=["view", "promote"],
    )

    assert task_row("Release Manager") == ("Release Manager", ["view", "promote"], False)
    [event] = AuditEvent.objects.all()
    assert (event.action, event.actor) == ("task.updated", "boss")
    assert event.changes == {
        "name": ["Release", "Release Manager"],
        "permissions": [["view"], ["view", "promote"]],
    }


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_taking_administer_out_of_the_last_administrators_task_is_refused(adapter, regs):
    chief = User.objects.create_user("chief", password=PASSWORD)
    task = Task.objects.create(name="Chief", permissions=["administer"])
    Privilege.objects.create(task=task, user=chief)
    staff_sync([chief])

    response = update_task(
        adapter, client_for(chief), task, name="Chief", description="", permissions=["view"]
    )

    assert LAST_ADMINISTRATOR in text(response)
    assert task_row("Chief") == ("Chief", ["administer"], False)
    chief.refresh_from_db()
    assert chief.is_staff
    assert audit() == []


def delete_task(adapter: str, client: Client, task: Task):
    if adapter == "admin":
        return admin_delete(client, "accounts/task", task.pk)
    if adapter == "admin-bulk":
        return admin_action(client, "accounts/task", "delete_selected", [task.pk])
    return client.post(f"/administration/tasks/{task.pk}/delete", follow=True)


@pytest.mark.parametrize("adapter", ["admin", "admin-bulk", "page"])
def test_task_delete_is_the_same_everywhere(adapter, boss_client, regs):
    task = Task.objects.create(name="Release Manager", permissions=["view", "promote"])
    carol = User.objects.create_user("carol", password=PASSWORD)
    Privilege.objects.create(task=task, user=carol)

    delete_task(adapter, boss_client, task)

    assert task_row("Release Manager") is None
    assert not Privilege.objects.filter(user=carol).exists()
    assert audit() == [("task.deleted", "Release Manager", "boss")]


@pytest.mark.parametrize("adapter", ["admin", "admin-bulk", "page"])
def test_built_in_task_is_not_deleted_anywhere(adapter, boss_client, regs):
    task = Task.objects.get(name="Publish Packages")

    response = delete_task(adapter, boss_client, task)

    assert "Publish Packages is a built-in task and cannot be deleted." in text(response)
    assert task_row("Publish Packages") == ("Publish Packages", ["view", "publish"], True)
    assert audit() == []


def test_the_admin_offers_no_delete_for_a_built_in_task(boss_client, regs):
    task = Task.objects.get(name="Publish Packages")
    page = text(boss_client.get(f"/admin/accounts/task/{task.pk}/change/"))
    assert f"/admin/accounts/task/{task.pk}/delete/" not in page
    # Opening the confirmation by its address answers as a POST would: with the refusal.
    response = boss_client.get(f"/admin/accounts/task/{task.pk}/delete/", follow=True)
    assert "Publish Packages is a built-in task and cannot be deleted." in text(response)
    assert task_row("Publish Packages") is not None and audit() == []


def test_a_bulk_delete_with_one_refusal_deletes_nothing(boss_client, regs):
    custom = Task.objects.create(name="Release Manager", permissions=["view"])
    built_in = Task.objects.get(name="Publish Packages")

    response = admin_action(
        boss_client, "accounts/task", "delete_selected", [custom.pk, built_in.pk]
    )

    assert "Publish Packages is a built-in task and cannot be deleted." in text(response)
    assert "Successfully deleted" not in text(response)
    assert task_row("Release Manager") is not None  # all or nothing
    assert audit() == []


# --- privileges -------------------------------------------------------------------------------
def add_privilege(adapter: str, client: Client, *, task: Task, user, registry=None, effect="grant"):
    if adapter == "admin":
        return client.post(
            "/admin/accounts/privilege/add/",
            {
                "task": task.pk,
                "user": user.pk,
                "group": "",
                "registry": registry.pk if registry else "",
                "effect": effect,
            },
            follow=True,
        )
    return client.post(
        "/administration/users-tasks",
        {
            "task": task.pk,
            "principal": f"user:{user.pk}",
            "registry": registry.pk if registry else "",
            "effect": effect,
        },
        follow=True,
    )


def privilege_rows():
    return sorted(
        (p.task.name, p.principal_name, p.scope_name, p.effect)
        for p in Privilege.objects.select_related("task", "user", "group", "registry")
    )


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_privilege_grant_is_the_same_everywhere(adapter, boss_client, regs):
    carol = User.objects.create_user("carol", password=PASSWORD)

    add_privilege(
        adapter,
        boss_client,
        task=Task.objects.get(name="Publish Packages"),
        user=carol,
        registry=regs["devdocker"],
    )

    assert privilege_rows() == [
        ("Administer", "boss", "all registries", "grant"),
        ("Publish Packages", "carol", "devdocker", "grant"),
    ]
    assert audit() == [("privilege.added", "Grant Publish Packages to carol on devdocker", "boss")]


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_granting_administer_makes_staff_alike(adapter, boss_client, regs):
    carol = User.objects.create_user("carol", password=PASSWORD)

    add_privilege(adapter, boss_client, task=Task.objects.get(name="Administer"), user=carol)

    carol.refresh_from_db()
    assert carol.is_staff
    assert [a for a, _, _ in audit()] == ["privilege.added"]


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_restricting_administer_from_the_last_administrator_is_refused(
    adapter, boss_client, boss, regs
):
    response = add_privilege(
        adapter, boss_client, task=Task.objects.get(name="Administer"), user=boss, effect="restrict"
    )

    assert LAST_ADMINISTRATOR in text(response)
    assert privilege_rows() == [("Administer", "boss", "all registries", "grant")]
    boss.refresh_from_db()
    assert boss.is_staff
    assert audit() == []


def remove_privilege(adapter: str, client: Client, privilege: Privilege):
    if adapter == "admin":
        return admin_delete(client, "accounts/privilege", privilege.pk)
    if adapter == "admin-bulk":
        return admin_action(client, "accounts/privilege", "delete_selected", [privilege.pk])
    return client.post(f"/administration/privileges/{privilege.pk}/remove", follow=True)


@pytest.mark.parametrize("adapter", ["admin", "admin-bulk", "page"])
def test_removing_the_last_administer_privilege_is_refused_everywhere(
    adapter, boss_client, boss, regs
):
    privilege = Privilege.objects.get(user=boss)

    response = remove_privilege(adapter, boss_client, privilege)

    assert LAST_ADMINISTRATOR in text(response)
    assert privilege_rows() == [("Administer", "boss", "all registries", "grant")]
    boss.refresh_from_db()
    assert boss.is_staff
    assert audit() == []


@pytest.mark.parametrize("adapter", ["admin", "admin-bulk", "page"])
def test_privilege_removal_is_the_same_everywhere(adapter, boss_client, regs):
    carol = User.objects.create_user("carol", password=PASSWORD)
    privilege = grant("Administer", user=carol)
    staff_sync([carol])

    remove_privilege(adapter, boss_client, privilege)

    assert privilege_rows() == [("Administer", "boss", "all registries", "grant")]
    carol.refresh_from_db()
    assert not carol.is_staff  # staff follows Administer, whichever way it went
    assert audit() == [("privilege.removed", "Grant Administer to carol on all registries", "boss")]


# --- API keys ---------------------------------------------------------------------------------
def revoke_key(adapter: str, client: Client, key: ApiKey):
    if adapter == "admin":
        return admin_action(client, "accounts/apikey", "revoke_selected", [key.pk])
    if adapter == "page":
        return client.post(f"/administration/api-keys/{key.pk}/revoke", follow=True)
    return client.post(f"/api/api-keys/delete/{key.pk}")


@pytest.mark.parametrize("adapter", ADAPTERS_ALL)
def test_api_key_revoke_is_the_same_everywhere(adapter, boss_client, regs):
    key, raw = make_key(ApiKey.Kind.SYSTEM, name="old-ci")

    revoke_key(adapter, boss_client, key)
    key.refresh_from_db()
    revoked_at = key.revoked_at
    revoke_key(adapter, boss_client, key)  # again: nothing more happens

    key.refresh_from_db()
    assert revoked_at is not None and key.revoked_at == revoked_at
    assert Client().get("/api/api-keys/list", HTTP_X_APIKEY=raw).status_code == 403
    assert audit() == [
        ("api_key.created", "old-ci", "Promoter"),
        ("api_key.revoked", "old-ci", "boss"),
    ]


@pytest.mark.parametrize("adapter", ADAPTERS_ALL)
def test_someone_else_cannot_revoke_a_system_key_anywhere(adapter, regs, boss):
    key, _ = make_key(ApiKey.Kind.SYSTEM, name="ci")
    keeper = User.objects.create_user("keeper", password=PASSWORD)
    grant("Manage Feed", user=keeper)

    response = revoke_key(adapter, client_for(keeper), key)

    key.refresh_from_db()
    assert key.revoked_at is None
    assert [a for a, _, _ in audit()] == ["api_key.created"]
    # Refused at each one's door: the admin's sign-in, the 403 page, the API's 404 (a key
    # the caller may not see does not exist for them).
    expected = {"admin": 200, "page": 403, "api": 404}[adapter]
    assert response.status_code == expected
    if adapter == "admin":
        assert response.redirect_chain[-1][0].startswith("/admin/login/")


def test_api_keys_are_read_only_in_the_admin(boss_client, regs):
    key, _ = make_key(ApiKey.Kind.SYSTEM, name="ci")
    assert boss_client.get("/admin/accounts/apikey/add/").status_code == 403
    assert admin_delete(boss_client, "accounts/apikey", key.pk).status_code == 403
    response = boss_client.post(
        f"/admin/accounts/apikey/{key.pk}/change/", {"name": "renamed", "permissions": '["feeds"]'}
    )
    assert response.status_code == 403
    key.refresh_from_db()
    assert (key.name, key.permissions, key.revoked_at) == ("ci", [], None)


# --- users ------------------------------------------------------------------------------------
def create_user(adapter: str, client: Client, username: str):
    if adapter == "admin":
        return client.post(
            "/admin/auth/user/add/",
            {
                "username": username,
                "usable_password": "true",
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
            follow=True,
        )
    return client.post(
        "/administration/users/new",
        {"username": username, "email": "", "password1": PASSWORD, "password2": PASSWORD},
        follow=True,
    )


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_user_create_is_the_same_everywhere(adapter, boss_client, regs):
    create_user(adapter, boss_client, "erin")

    erin = User.objects.get(username="erin")
    assert (erin.is_active, erin.is_staff, erin.is_superuser) == (True, False, False)
    assert Client().login(username="erin", password=PASSWORD)
    [event] = AuditEvent.objects.all()
    assert (event.action, event.object_repr, event.actor) == ("user.created", "erin", "boss")
    assert event.changes["password"] == ["(changed)", "(changed)"]  # never the password


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_a_taken_user_name_is_refused_alike(adapter, boss_client, regs):
    User.objects.create_user("erin", password=PASSWORD)

    response = create_user(adapter, boss_client, "ERIN")

    assert "A user called 'ERIN' already exists." in text(response)
    assert User.objects.filter(username__iexact="erin").count() == 1
    assert audit() == []


def update_user(adapter: str, client: Client, user, *, is_active: bool, groups=()):
    form = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "groups": [g.pk for g in groups],
    }
    if is_active:
        form["is_active"] = "on"
    if adapter == "admin":
        return client.post(f"/admin/auth/user/{user.pk}/change/", form, follow=True)
    return client.post(f"/administration/users/{user.pk}", form, follow=True)


def user_row(user):
    user.refresh_from_db()
    return (user.is_active, user.is_staff, sorted(g.name for g in user.groups.all()))


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_deactivating_a_user_is_the_same_everywhere(adapter, boss_client, regs):
    frank = User.objects.create_user("frank", password=PASSWORD)

    update_user(adapter, boss_client, frank, is_active=False)

    assert user_row(frank) == (False, False, [])
    [event] = AuditEvent.objects.all()
    assert (event.action, event.object_repr, event.actor) == ("user.updated", "frank", "boss")
    assert event.changes == {"is_active": [True, False]}


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_deactivating_yourself_is_refused_alike(adapter, boss_client, boss, regs):
    response = update_user(adapter, boss_client, boss, is_active=False)

    assert "You cannot deactivate yourself." in text(response)
    assert user_row(boss) == (True, True, [])
    assert audit() == []


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_leaving_the_administrators_group_as_the_last_one_is_refused(adapter, regs):
    admins = Group.objects.create(name="admins")
    chief = User.objects.create_user("chief", password=PASSWORD)
    chief.groups.add(admins)
    grant("Administer", group=admins)
    staff_sync([chief])

    response = update_user(adapter, client_for(chief), chief, is_active=True, groups=[])

    assert LAST_ADMINISTRATOR in text(response)
    assert user_row(chief) == (True, True, ["admins"])
    assert audit() == []


def test_the_admin_sets_a_password_through_the_service(boss_client, regs):
    frank = User.objects.create_user("frank", password=PASSWORD)

    response = boss_client.post(
        f"/admin/auth/user/{frank.pk}/password/",
        {
            "usable_password": "true",
            "password1": "another long password",
            "password2": "another long password",
        },
        follow=True,
    )

    assert "Password changed successfully." in text(response)
    assert Client().login(username="frank", password="another long password")
    [event] = AuditEvent.objects.all()
    assert (event.action, event.object_repr, event.changes) == (
        "user.updated",
        "frank",
        {"password": ["(changed)", "(changed)"]},
    )


def test_the_admin_does_not_delete_the_last_administrator(regs):
    chief = User.objects.create_user("chief", password=PASSWORD)
    grant("Administer", user=chief)
    staff_sync([chief])
    other = User.objects.create_superuser("root", password=PASSWORD)
    client = client_for(other)
    # root (a superuser) deleting chief is fine; chief deleting root then is too, and
    # then chief is the last one standing: deleting himself is refused.
    admin_delete(client, "auth/user", chief.pk)
    assert not User.objects.filter(username="chief").exists()
    assert audit() == [("user.deleted", "chief", "root")]
    response = admin_action(client, "auth/user", "delete_selected", [other.pk])
    assert "You cannot delete yourself." in text(response)
    assert User.objects.filter(username="root").exists()


# --- groups -----------------------------------------------------------------------------------
def create_group(adapter: str, client: Client, name: str, members=()):
    form = {"name": name, "members": [m.pk for m in members]}
    if adapter == "admin":
        return client.post("/admin/auth/group/add/", form, follow=True)
    return client.post("/administration/groups/new", form, follow=True)


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_group_create_is_the_same_everywhere(adapter, boss_client, regs):
    carol = User.objects.create_user("carol", password=PASSWORD)

    create_group(adapter, boss_client, "qa", members=[carol])

    assert [g.name for g in carol.groups.all()] == ["qa"]
    [event] = AuditEvent.objects.all()
    assert (event.action, event.object_repr, event.actor) == ("group.created", "qa", "boss")
    assert event.changes == {"name": [None, "qa"], "members": [None, ["carol"]]}


@pytest.mark.parametrize("adapter", ADAPTERS_UI)
def test_a_taken_group_name_is_refused_alike(adapter, boss_client, regs):
    Group.objects.create(name="qa")

    response = create_group(adapter, boss_client, "QA")

    assert "A group called 'QA' already exists." in text(response)
    assert list(Group.objects.values_list("name", flat=True)) == ["qa"]
    assert audit() == []


def delete_group(adapter: str, client: Client, group: Group):
    if adapter == "admin":
        return admin_delete(client, "auth/group", group.pk)
    if adapter == "admin-bulk":
        return admin_action(client, "auth/group", "delete_selected", [group.pk])
    return client.post(f"/administration/groups/{group.pk}/delete", follow=True)


@pytest.mark.parametrize("adapter", ["admin", "admin-bulk", "page"])
def test_group_delete_is_the_same_everywhere(adapter, boss_client, regs):
    carol = User.objects.create_user("carol", password=PASSWORD)
    qa = Group.objects.create(name="qa")
    qa.user_set.add(carol)

    delete_group(adapter, boss_client, qa)

    assert not Group.objects.exists() and User.objects.filter(username="carol").exists()
    assert audit() == [("group.deleted", "qa", "boss")]


@pytest.mark.parametrize("adapter", ["admin", "admin-bulk", "page"])
def test_deleting_the_last_administrators_group_is_refused_everywhere(adapter, regs):
    admins = Group.objects.create(name="admins")
    chief = User.objects.create_user("chief", password=PASSWORD)
    chief.groups.add(admins)
    grant("Administer", group=admins)
    staff_sync([chief])

    response = delete_group(adapter, client_for(chief), admins)

    assert LAST_ADMINISTRATOR in text(response)
    assert user_row(chief) == (True, True, ["admins"])
    assert Privilege.objects.filter(group=admins).exists()
    assert audit() == []


# --- the audit log itself ---------------------------------------------------------------------
def test_the_audit_log_is_read_only_in_the_admin(boss_client, regs):
    create_task("page", boss_client, "Release Manager")
    [event] = AuditEvent.objects.all()

    assert "Release Manager" in text(boss_client.get("/admin/accounts/auditevent/"))
    assert boss_client.get(f"/admin/accounts/auditevent/{event.pk}/change/").status_code == 200
    assert boss_client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert admin_delete(boss_client, "accounts/auditevent", event.pk).status_code == 403
    assert AuditEvent.objects.count() == 1


def test_every_admin_form_opens(boss_client, regs):
    key, _ = make_key(ApiKey.Kind.SYSTEM, name="ci")
    group = Group.objects.create(name="qa")
    task = Task.objects.create(name="Release", permissions=["view"])
    privilege = grant("View & Download Packages", anonymous=True)
    create_task("page", boss_client, "Audited")
    pages = [
        "/admin/registries/registry/add/",
        f"/admin/registries/registry/{regs['devdocker'].pk}/change/",
        "/admin/accounts/task/add/",
        f"/admin/accounts/task/{task.pk}/change/",
        "/admin/accounts/privilege/add/",
        f"/admin/accounts/privilege/{privilege.pk}/change/",
        f"/admin/accounts/apikey/{key.pk}/change/",
        "/admin/accounts/apikey/",
        "/admin/auth/user/add/",
        f"/admin/auth/user/{User.objects.get(username='boss').pk}/change/",
        "/admin/auth/group/add/",
        f"/admin/auth/group/{group.pk}/change/",
        "/admin/accounts/auditevent/",
    ]
    for path in pages:
        assert boss_client.get(path).status_code == 200, path
    group_page = text(boss_client.get(f"/admin/auth/group/{group.pk}/change/"))
    assert 'name="members"' in group_page and 'name="permissions"' not in group_page
    user_page = text(boss_client.get("/admin/auth/user/add/"))
    assert 'name="password1"' in user_page


def test_the_admin_keeps_a_registry_password_it_never_shows(boss_client, regs):
    mirror = Registry.objects.create(
        name="mirror", endpoint="https://registry.example.com", username="robot", password="s3cret"
    )

    page = text(boss_client.get(f"/admin/registries/registry/{mirror.pk}/change/"))
    update_registry("admin", boss_client, mirror, description="A mirror")  # password left empty
    update_registry(
        "admin", boss_client, Registry.objects.get(name="mirror"), password="n3w-s3cret"
    )

    assert "s3cret" not in page
    mirror.refresh_from_db()
    assert (mirror.description, mirror.password) == ("A mirror", "n3w-s3cret")
    changes = [e.changes for e in AuditEvent.objects.order_by("id")]
    assert changes == [{"description": ["", "A mirror"]}, {"password": ["(changed)", "(changed)"]}]
