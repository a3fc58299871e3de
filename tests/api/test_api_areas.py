"""System keys limited to API areas: full control inside their areas, 403 everywhere else."""

from __future__ import annotations

import pytest

from registries.models import HistoryEvent
from tests.api.conftest import Api, make_key

pytestmark = pytest.mark.django_db(transaction=True)


def promote(api: Api, repo: str):
    return api.post(
        "/api/promotions/promote",
        data={"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"},
    )


def test_key_limited_to_promotions_promotes_but_manages_nothing(demo, pushed):
    repo, info = pushed
    api = Api(demo.url, make_key("system", areas=["promotions"], name="release-bot"))

    promoted = promote(api, repo)

    assert promoted.status_code == 200, promoted.text
    assert (promoted.json()["status"], promoted.json()["digest"]) == ("succeeded", info.digest)
    assert HistoryEvent.objects.get(action="promoted", repository=repo).actor == (
        "API key release-bot"
    )
    assert api.get("/api/promotions/list", params={"packageName": repo}).status_code == 200
    for path in ("/api/management/feeds/list", "/api/api-keys/list"):
        refused = api.get(path)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == (
            f"The API key release-bot is limited to the API areas promotions; {path} is in "
            f"the {'feeds' if 'feeds' in path else 'api-keys'} API area."
        )
    created = api.post("/api/api-keys/create", json={"type": "system", "name": "escalate"})
    assert created.status_code == 403


def test_key_limited_to_feeds_manages_feeds_but_cannot_promote(demo, pushed):
    repo, _ = pushed
    api = Api(demo.url, make_key("system", areas=["feeds"], name="feed-bot"))

    refused = promote(api, repo)

    assert refused.status_code == 403
    # ProGet's endpoint answers errors as plain text; the others in JSON.
    assert refused.headers["Content-Type"].startswith("text/plain")
    assert "limited to the API areas feeds" in refused.text
    assert not HistoryEvent.objects.filter(action="promoted", repository=repo).exists()
    feeds = api.get("/api/management/feeds/list")
    assert feeds.status_code == 200
    assert {"devdocker", "rcdocker", "proddocker"} <= {f["name"] for f in feeds.json()}
    created = api.post(
        "/api/management/feeds/create", json={"name": "qadocker", "feedType": "docker"}
    )
    assert created.status_code == 201, created.text
    assert api.get("/api/promotions/list").status_code == 403


def test_full_control_system_key_still_does_everything(api, pushed):
    repo, _ = pushed

    assert promote(api, repo).status_code == 200
    assert api.get("/api/management/feeds/list").status_code == 200
    listed = api.get("/api/api-keys/list")
    assert listed.status_code == 200
    [ci] = [k for k in listed.json() if k["displayName"] == "ci"]
    assert (ci["type"], ci["systemApis"], ci["packagePermissions"]) == (
        "System",
        ["full-control"],
        None,
    )


def test_create_a_limited_key_through_the_api_list_it_and_use_it(api, demo):
    created = api.post(
        "/api/api-keys/create",
        json={"type": "system", "name": "keys-bot", "areas": ["api-keys", "feeds"]},
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["type"], body["systemApis"], body["packagePermissions"]) == (
        "System",
        ["feeds", "api-keys"],
        None,
    )
    listed = {k["displayName"]: k for k in api.get("/api/api-keys/list").json()}
    assert listed["keys-bot"]["systemApis"] == ["feeds", "api-keys"]
    limited = Api(demo.url, body["key"])
    assert limited.get("/api/api-keys/list").status_code == 200
    assert limited.get("/api/management/feeds/list").status_code == 200
    assert limited.get("/api/promotions/list").status_code == 403


def test_a_limited_key_cannot_make_a_key_with_more_power(api, demo):
    created = api.post(
        "/api/api-keys/create", json={"type": "system", "name": "keys-bot", "areas": ["api-keys"]}
    )
    limited = Api(demo.url, created.json()["key"])

    for body in (
        {"type": "system", "name": "root"},
        {"type": "system", "name": "wider", "areas": ["api-keys", "promotions"]},
        {"type": "feed", "name": "feedy", "feeds": ["devdocker"], "permissions": ["view"]},
    ):
        refused = limited.post("/api/api-keys/create", json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert "can only create system keys limited to some of those areas" in refused.text
    narrower = limited.post(
        "/api/api-keys/create", json={"type": "system", "name": "same", "areas": ["api-keys"]}
    )
    assert narrower.status_code == 201
