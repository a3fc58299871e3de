"""Issue 11, item 1: Manage Feed could read and redirect a registry's stored credentials.

Only Administer changes where a registry points or its credentials (page, API and service
alike); a stored password is never rendered, returned or logged; a new endpoint drops it;
and it is encrypted in the database.
"""

from __future__ import annotations

import base64
import logging
import re

import pytest
import requests
from django.db import connection

from accounts.models import AuditEvent
from promoter.errors import Forbidden
from registries.models import HistoryEvent, Registry
from registries.services.promotions import promotion_request
from registries.services.registries import registry_update
from tests.conftest import PASSWORD, user_with
from tests.security.conftest import admin, repo_name, small_image
from tests.support.hostile_registry import HostileRegistry

SECRET = "upstream-s3cret-Zq81"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def upstream():
    """The real upstream (demands the stored credentials) and an attacker's listener."""
    with HostileRegistry(require_basic=("mirror", SECRET)) as real, HostileRegistry() as listener:
        yield real, listener


def test_manage_feed_holder_can_neither_see_nor_redirect_the_stored_password(
    demo, upstream, client, caplog
):
    real, listener = upstream
    repo = repo_name()
    digest = small_image(real, repo)
    registry_create_as_admin(real.url)
    manager = user_with("Manage Feed", registry="extdocker", username="feed-manager")
    user_with("View & Download Packages", registry="extdocker", username="feed-manager")
    client.force_login(manager)
    caplog.set_level(logging.DEBUG)

    # The Manage Feed page: no password in it, the connection fields read-only.
    page = client.get("/registries/extdocker/manage")
    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert re.search(r'<input[^>]*name="endpoint"[^>]*disabled', page.content.decode())
    assert re.search(r'<input[^>]*name="password"[^>]*disabled', page.content.decode())

    # The page: a posted endpoint is ignored (disabled field), nothing changes.
    posted = client.post(
        "/registries/extdocker/manage",
        {"description": "ours", "endpoint": listener.url, "active": "on"},
    )
    assert posted.status_code == 302
    assert Registry.objects.get(name="extdocker").endpoint == real.url

    # The API: 403 for endpoint, namespace, user name and password; description is fine.
    api = f"{demo.url}/api/management/feeds/update/extdocker"
    auth = ("feed-manager", PASSWORD)
    for change in (
        {"endpoint": listener.url},
        {"namespace": "other"},
        {"username": "someone"},
        {"password": "guess"},
    ):
        answer = requests.post(api, json=change, auth=auth, timeout=30)
        assert answer.status_code == 403, (change, answer.text)
        assert "Administer" in answer.json()["error"]
    assert requests.post(api, json={"description": "x"}, auth=auth, timeout=30).status_code == 200
    # The service decides, whoever calls it.
    with pytest.raises(Forbidden):
        registry_update(
            registry=Registry.objects.get(name="extdocker"),
            actor=_principal(manager),
            values={"endpoint": listener.url},
        )
    feed = requests.get(f"{demo.url}/api/management/feeds/get/extdocker", auth=auth, timeout=30)
    assert feed.status_code == 200 and SECRET not in feed.text and "password" not in feed.json()

    # The next promotion sends the credentials to the real upstream, and only there.
    promotion = promotion_request(
        source=Registry.objects.get(name="extdocker"),
        repository=repo,
        tag="1.0",
        target=Registry.objects.get(name="devdocker"),
        actor=admin(),
    )
    promotion.refresh_from_db()
    assert promotion.status == "succeeded", promotion.error
    assert promotion.digest == digest
    assert listener.seen() == []
    # Anonymous first, then (after its 401) Basic with the decrypted password.
    sent = {r.headers.get("Authorization") for r in real.seen("GET", "/manifests/")}
    assert sent == {None, basic("mirror", SECRET)}
    assert SECRET not in caplog.text
    assert all(SECRET not in str(e.changes) for e in AuditEvent.objects.all())


def test_a_new_endpoint_drops_the_stored_password(demo, upstream, caplog):
    real, listener = upstream
    repo = repo_name()
    small_image(listener, repo)
    registry = registry_create_as_admin(real.url)
    caplog.set_level(logging.DEBUG)

    registry = registry_update(registry=registry, actor=admin(), values={"endpoint": listener.url})

    assert (registry.endpoint, registry.username, registry.password) == (listener.url, "mirror", "")
    event = AuditEvent.objects.filter(action="registry.updated").latest("pk")
    assert event.changes["password"] == ["(changed)", "(changed)"]  # never the value
    promotion = promotion_request(
        source=registry,
        repository=repo,
        tag="1.0",
        target=Registry.objects.get(name="devdocker"),
        actor=admin(),
    )
    promotion.refresh_from_db()
    assert promotion.status == "succeeded", promotion.error
    sent = {r.headers.get("Authorization", "") for r in listener.seen()}
    assert basic("mirror", SECRET) not in sent and listener.seen()  # asked, without it
    assert SECRET not in caplog.text
    assert HistoryEvent.objects.filter(action="promoted", repository=repo).count() == 1


def test_stored_passwords_are_encrypted_at_rest(demo, settings):
    registry = registry_create_as_admin("https://mirror.example.com")
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM registries_registry WHERE id = %s", [registry.pk])
        (stored,) = cursor.fetchone()
    assert stored.startswith("fernet:") and SECRET not in stored
    assert Registry.objects.get(pk=registry.pk).password == SECRET

    # With another key the password cannot be read, but saving never destroys it.
    from registries import credentials

    settings.PROMOTER_CREDENTIALS_KEY = "some other key"
    credentials._cipher.cache_clear()
    unreadable = Registry.objects.get(pk=registry.pk)
    assert unreadable.password == ""
    unreadable.description = "touched"
    unreadable.save()
    settings.PROMOTER_CREDENTIALS_KEY = f"new key,{_original_key()}"  # rotation: old still reads
    credentials._cipher.cache_clear()
    assert Registry.objects.get(pk=registry.pk).password == SECRET


def test_the_manage_page_never_renders_the_password_even_for_administrators(demo, client):
    registry_create_as_admin("https://mirror.example.com")
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="Admin"))
    page = client.get("/registries/extdocker/manage")
    assert page.status_code == 200 and SECRET not in page.content.decode()
    # An empty password field keeps the stored one.
    saved = client.post(
        "/registries/extdocker/manage",
        {
            "description": "d",
            "endpoint": "https://mirror.example.com",
            "username": "mirror",
            "password": "",
            "active": "on",
        },
    )
    assert saved.status_code == 302
    assert Registry.objects.get(name="extdocker").password == SECRET


def registry_create_as_admin(endpoint: str) -> Registry:
    from registries.services.registries import registry_create

    return registry_create(
        name="extdocker",
        actor=admin(),
        values={"endpoint": endpoint, "username": "mirror", "password": SECRET},
    )


def _principal(user):
    from accounts.permissions import Principal

    return Principal(user=user)


def _original_key() -> str:
    import os

    return os.environ["PROMOTER_CREDENTIALS_KEY"]


def test_the_django_admin_follows_the_same_rules(demo, client):
    registry = registry_create_as_admin("https://mirror.example.com")
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="Admin"))
    url = f"/admin/registries/registry/{registry.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and SECRET not in page.content.decode()
    saved = client.post(
        url,
        {
            "name": "extdocker",
            "description": "",
            "usage_type": "general",
            "promote_to": "",
            "active": "on",
            "endpoint": "https://elsewhere.example.com",
            "namespace": "",
            "username": "mirror",
            "password": "",
        },
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    registry.refresh_from_db()
    assert (registry.endpoint, registry.password) == ("https://elsewhere.example.com", "")
