"""Feed (registry) and API-key management through the API."""

from __future__ import annotations

import pytest

from accounts.models import ApiKey
from registries.models import Registry
from tests.api.conftest import Api, make_key
from tests.conftest import user_with

pytestmark = pytest.mark.django_db(transaction=True)


# --- feeds --------------------------------------------------------------------------------
def test_feed_create_get_list_update_delete(api):
    created = api.post(
        "/api/management/feeds/create",
        json={
            "name": "qa-docker",
            "feedType": "docker",
            "description": "QA images",
            "usageType": "validated",
            "promoteTo": "proddocker",
        },
    )

    assert created.status_code == 201, created.text
    assert created.json() == {
        "name": "qa-docker",
        "alternateNames": [],
        "feedType": "docker",
        "description": "QA images",
        "active": True,
        "requireComment": False,
        "dropPath": None,
        "usageType": "validated",
        "promoteTo": "proddocker",
        "endpoint": None,
        "namespace": None,
    }
    assert api.get("/api/management/feeds/get/qa-docker").json() == created.json()
    assert "qa-docker" in [f["name"] for f in api.get("/api/management/feeds/list").json()]

    # Exactly the properties given change: left out, they stay.
    updated = api.post("/api/management/feeds/update/qa-docker", json={"active": False})
    assert updated.status_code == 200, updated.text
    assert updated.json() == {**created.json(), "active": False}
    assert Registry.objects.get(name="qa-docker").active is False

    # Explicit null (or "") clears what can be empty; null where it cannot is refused.
    cleared = api.post(
        "/api/management/feeds/update/qa-docker",
        json={"description": None, "promoteTo": ""},
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == {**updated.json(), "description": "", "promoteTo": None}
    refused = api.post("/api/management/feeds/update/qa-docker", json={"active": None})
    assert refused.status_code == 400
    assert refused.json()["error"] == "active cannot be null; leave it out to keep it as it is."
    assert api.get("/api/management/feeds/get/qa-docker").json() == cleared.json()

    deleted = api.post("/api/management/feeds/delete/qa-docker")
    assert (deleted.status_code, deleted.json()) == (200, {"deleted": "qa-docker"})
    assert api.get("/api/management/feeds/get/qa-docker").status_code == 404


def test_external_feed_keeps_its_password_secret(api):
    created = api.post(
        "/api/management/feeds/create",
        json={
            "name": "hub-mirror",
            "feedType": "docker",
            "endpoint": "https://registry.example.com",
            "namespace": "mirror",
            "username": "robot",
            "password": "s3cret",
        },
    )

    assert created.status_code == 201, created.text
    assert created.json()["endpoint"] == "https://registry.example.com"
    assert "s3cret" not in created.text and "password" not in created.json()
    assert Registry.objects.get(name="hub-mirror").password == "s3cret"


BAD_FEEDS = [
    ({"feedType": "docker"}, 400, "name is required"),
    ({"name": "x"}, 400, "feedType is required"),
    ({"name": "npm-feed", "feedType": "npm"}, 400, "not supported"),
    ({"name": "Bad Name", "feedType": "docker"}, 400, "name:"),
    ({"name": "devdocker", "feedType": "docker"}, 400, "already exists"),
    ({"name": "ok", "feedType": "docker", "usageType": "mixed"}, 400, "usageType"),
    ({"name": "ok", "feedType": "docker", "active": "maybe"}, 400, "active must be"),
    ({"name": "ok", "feedType": "docker", "promoteTo": "nowhere"}, 404, "nowhere"),
    ({"name": "ok", "feedType": "docker", "promoteTo": "ok"}, 400, "itself"),
    ({"name": "ok", "feedType": "docker", "endpoint": "not a url"}, 400, "endpoint"),
    ({"name": "ok", "feedType": "docker", "description": "a\x00b"}, 400, "control characters"),
    ({"name": "ok", "feedType": "docker", "description": "d" * 4001}, 400, "limit is 4000"),
    ({"name": "ok", "feedType": "docker", "dropPath": "/srv/drop"}, 400, "dropPath must be empty"),
    ({"name": "ok", "feedType": "docker", "cacheConnectors": True}, 400, "not a property"),
    ({"name": 7, "feedType": "docker"}, 400, "name must be a string"),
]


def test_feed_create_refuses_bad_input_with_json_errors(api):
    for body, status, message in BAD_FEEDS:
        response = api.post("/api/management/feeds/create", json=body)

        assert response.status_code == status, (body, response.text)
        assert message in response.json()["error"], (body, response.text)
    assert not Registry.objects.filter(name="ok").exists()


def test_feed_update_cannot_rename_or_change_usage_type(api):
    rename = api.post("/api/management/feeds/update/devdocker", json={"name": "other"})
    usage = api.post("/api/management/feeds/update/devdocker", json={"usageType": "validated"})

    assert (rename.status_code, usage.status_code) == (400, 400)
    assert "renamed" in rename.json()["error"] and "usage type" in usage.json()["error"]


def test_deleting_a_feed_with_promotions_is_400_not_500(api, pushed):
    repo, _ = pushed
    promoted = api.post(
        "/api/promotions/promote",
        data={"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"},
    )
    assert promoted.status_code == 200, promoted.text

    response = api.post("/api/management/feeds/delete/rcdocker")

    assert response.status_code == 400
    assert "set it inactive" in response.json()["error"]
    assert Registry.objects.filter(name="rcdocker").exists()


def test_feed_endpoints_need_manage_feed_or_administer(demo, password):
    manager = user_with("Manage Feed", registry="devdocker", username="feed-manager")
    viewer = user_with("View & Download Packages", username="viewer")
    as_manager = Api(demo.url)
    creds = {"auth": (manager.username, password)}

    assert [f["name"] for f in as_manager.get("/api/management/feeds/list", **creds).json()] == [
        "devdocker"
    ]
    assert as_manager.get("/api/management/feeds/get/devdocker", **creds).status_code == 200
    assert (
        as_manager.post(
            "/api/management/feeds/update/devdocker", json={"description": "ours"}, **creds
        ).status_code
        == 200
    )
    # Sees rcdocker? No View there: it does not exist for them.
    assert as_manager.get("/api/management/feeds/get/rcdocker", **creds).status_code == 404
    assert (
        as_manager.post(
            "/api/management/feeds/create", json={"name": "mine", "feedType": "docker"}, **creds
        ).status_code
        == 403
    )
    assert as_manager.post("/api/management/feeds/delete/devdocker", **creds).status_code == 403
    as_viewer = {"auth": (viewer.username, password)}
    assert as_manager.get("/api/management/feeds/get/devdocker", **as_viewer).status_code == 403
    assert as_manager.get("/api/management/feeds/list", **as_viewer).json() == []
    assert Api(demo.url).get("/api/management/feeds/list").status_code == 401


# --- API keys ------------------------------------------------------------------------------
def test_create_a_feed_key_use_it_list_it_and_delete_it(api, demo, pushed):
    repo, _ = pushed

    created = api.post(
        "/api/api-keys/create",
        json={
            "type": "feed",
            "name": "ci-promoter",
            "description": "promotes from CI",
            "feeds": ["devdocker", "rcdocker"],
            "permissions": ["view", "promote"],
            "expiration": "2099-12-31",
        },
    )

    assert created.status_code == 201, created.text
    body = created.json()
    secret = body.pop("key")
    assert secret.startswith("pk_")
    assert (
        body["type"],
        body["displayName"],
        body["feeds"],
        body["feed"],
        body["packagePermissions"],
        body["logging"],
        body["revoked"],
    ) == ("Feed", "ci-promoter", ["devdocker", "rcdocker"], None, ["view", "promote"], "None", None)
    # A date alone means its last second.
    assert body["expiration"].startswith("2099-12-31T23:59:59")

    promoted = Api(demo.url, secret).post(
        "/api/promotions/promote",
        data={"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"},
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["user"] == "API key ci-promoter"

    listed = api.get("/api/api-keys/list")
    assert listed.status_code == 200
    assert secret not in listed.text
    assert ApiKey.objects.get(pk=body["id"]).key_hash not in listed.text
    assert all("key" not in k for k in listed.json())
    assert body["id"] in [k["id"] for k in listed.json()]

    deleted = api.post(f"/api/api-keys/delete/{body['id']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["revoked"] is not None
    refused = Api(demo.url, secret).post(
        "/api/promotions/promote",
        data={"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"},
    )
    assert refused.status_code == 403


def test_a_person_may_create_and_list_only_their_own_personal_keys(demo, password):
    person = user_with("View & Download Packages", username="dev-person")
    make_key("system", name="someone-elses")
    api = Api(demo.url)
    creds = {"auth": (person.username, password)}

    mine = api.post("/api/api-keys/create", json={"type": "personal", "name": "laptop"}, **creds)
    system = api.post("/api/api-keys/create", json={"type": "system", "name": "x"}, **creds)
    listed = api.get("/api/api-keys/list", **creds)

    assert mine.status_code == 201, mine.text
    assert mine.json()["user"] == "dev-person"
    assert system.status_code == 403
    assert [k["displayName"] for k in listed.json()] == ["laptop"]
    # The personal key acts as its person.
    as_key = Api(demo.url, mine.json()["key"]).get("/api/api-keys/list")
    assert [k["displayName"] for k in as_key.json()] == ["laptop"]


BAD_KEYS = [
    ({"name": "x"}, 400, "type is required"),
    ({"type": "root", "name": "x"}, 400, "type must be"),
    ({"type": "system"}, 400, "An API key needs a name"),
    ({"type": "feed", "name": "x", "permissions": ["view"]}, 400, "at least one registry"),
    ({"type": "feed", "name": "x", "feeds": ["devdocker"]}, 400, "at least one permission"),
    (
        {"type": "feed", "name": "x", "feeds": ["devdocker"], "permissions": ["administer"]},
        400,
        "Unknown permission",
    ),
    ({"type": "feed", "name": "x", "feeds": ["nofeed"], "permissions": ["view"]}, 404, "nofeed"),
    ({"type": "feed", "name": "x", "feeds": "devdocker", "permissions": [1]}, 400, "array"),
    ({"type": "system", "name": "x", "expiration": "tomorrow"}, 400, "ISO 8601"),
    ({"type": "system", "name": "x", "expiration": "2001-01-01"}, 400, "future"),
    ({"type": "personal", "name": "x", "user": "nobody"}, 404, "nobody"),
    ({"type": "personal", "name": "x"}, 400, "needs the user"),
    ({"type": "system", "name": "x", "permissions": ["root"]}, 400, "Only feed keys have"),
    ({"type": "system", "name": "   "}, 400, "An API key needs a name"),
    ({"type": "system", "name": "x", "displayName": "y"}, 400, "only one of displayName or name"),
    ({"type": "system", "name": "x", "logging": "Both"}, 400, "logging must be one of None"),
    ({"type": "system", "name": "x", "key": "pk_mine"}, 400, "key must be left out"),
    (
        {"type": "feed", "name": "x", "feedGroup": "g", "packagePermissions": ["view"]},
        400,
        "feedGroup must be left out",
    ),
    (
        {"type": "system", "name": "x", "areas": ["promotions", "root"]},
        400,
        "Unknown API area: root",
    ),
    ({"type": "system", "name": "x", "areas": "feeds"}, 400, "areas must be an array"),
    (
        {
            "type": "feed",
            "name": "x",
            "feeds": ["devdocker"],
            "permissions": ["view"],
            "areas": ["feeds"],
        },
        400,
        "Only system keys are limited to API areas",
    ),
]


def test_api_key_create_refuses_bad_input(api):
    for body, status, message in BAD_KEYS:
        response = api.post("/api/api-keys/create", json=body)

        assert response.status_code == status, (body, response.text)
        assert message in response.json()["error"], (body, response.text)
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["ci"]


def test_api_key_delete_of_unknown_or_foreign_key_is_404(api, demo, password):
    person = user_with(username="someone")
    other = ApiKey.objects.get(name="ci")

    assert api.post("/api/api-keys/delete/999999").status_code == 404
    assert api.post("/api/api-keys/delete/abc").status_code == 404
    assert (
        Api(demo.url)
        .post(f"/api/api-keys/delete/{other.pk}", auth=(person.username, password))
        .status_code
        == 404
    )
    assert Api(demo.url).get("/api/api-keys/list").status_code == 401


def test_a_signed_in_browser_session_needs_the_csrf_token_to_write(demo):
    from django.contrib.auth import get_user_model
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(get_user_model().objects.get(username="Admin"))

    forged = browser.post(
        "/api/management/feeds/create",
        content_type="application/json",
        data={"name": "forged", "feedType": "docker"},
    )
    read = browser.get("/api/management/feeds/list")

    assert forged.status_code == 403
    assert "CSRF" in forged.json()["error"]
    assert not Registry.objects.filter(name="forged").exists()
    assert read.status_code == 200  # reads use the session as pages do
