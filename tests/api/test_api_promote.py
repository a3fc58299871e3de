"""ProGet's promotion API end to end: curl and plain HTTP in, digests checked with skopeo."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from registries.models import HistoryEvent, Promotion, Tag
from tests.api.conftest import Api, make_key
from tests.conftest import user_with, wait_for
from tests.support.images import skopeo_inspect_raw

pytestmark = pytest.mark.django_db(transaction=True)


def raw(demo, admin_creds, registry: str, repo: str, tag: str = "1.0") -> bytes:
    return skopeo_inspect_raw(
        f"docker://{demo.hostport}/{registry}/{repo}:{tag}", creds=admin_creds
    )


def test_curl_promote_as_in_progets_docs_copies_the_exact_digest(api, demo, pushed, admin_creds):
    repo, info = pushed

    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{demo.url}/api/promotions/promote",
            "--header",
            f"X-ApiKey: {api.key}",
            "-F",
            f"name={repo}",
            "-F",
            "version=1.0",
            "-F",
            "fromFeed=devdocker",
            "-F",
            "toFeed=rcdocker",
            "-F",
            "comments=Ready for testing",
            "-w",
            "\n%{http_code}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    body, _, code = result.stdout.rpartition("\n")
    assert code == "200", result.stdout
    status = json.loads(body)
    assert status["status"] == "succeeded"
    assert status["digest"] == info.digest
    assert raw(demo, admin_creds, "rcdocker", repo) == raw(demo, admin_creds, "devdocker", repo)
    event = HistoryEvent.objects.get(action="promoted", repository=repo)
    assert (event.from_registry, event.to_registry, event.comment, event.actor) == (
        "devdocker",
        "rcdocker",
        "Ready for testing",
        "API key ci",
    )

    listed = api.get("/api/promotions/list", params={"packageName": repo, "toFeed": "rcdocker"})
    assert listed.status_code == 200
    group, _, name = repo.rpartition("/")
    [package] = listed.json()
    assert (
        package["packageName"],
        package["groupName"],
        package["repository"],
        package["packageType"],
        package["version"],
    ) == (name, group, repo, "docker", "1.0")
    [promotion] = package["promotions"]
    assert (
        promotion["fromFeed"],
        promotion["toFeed"],
        promotion["user"],
        promotion["comments"],
        promotion["digest"],
    ) == ("devdocker", "rcdocker", "API key ci", "Ready for testing", info.digest)


def test_json_body_with_api_key_property_and_group_promotes(demo, pushed, admin_creds, system_key):
    repo, info = pushed
    group, _, name = repo.rpartition("/")

    response = Api(demo.url).post(
        "/api/promotions/promote",
        json={
            "packageName": name,
            "groupName": group,
            "version": "1.0",
            "fromFeed": "devdocker",
            "toFeed": "rcdocker",
            "comments": "Tests passed ✓",
            "API_Key": system_key,
        },
    )

    assert response.status_code == 200, response.text
    assert response.headers["Location"] == f"/api/promotions/status/{response.json()['id']}"
    assert raw(demo, admin_creds, "rcdocker", repo) == raw(demo, admin_creds, "devdocker", repo)
    assert Promotion.objects.get(repository=repo).comment == "Tests passed ✓"


def test_form_body_with_key_field_and_promote_to_default(demo, pushed, admin_creds, system_key):
    repo, info = pushed

    response = Api(demo.url).post(
        "/api/promotions/promote",
        data={
            "name": repo,
            "version": "1.0",
            "fromFeed": "devdocker",
            "key": system_key,
        },
    )

    # No toFeed: devdocker's Promote To registry (rcdocker) is the target.
    assert response.status_code == 200, response.text
    assert response.json()["toFeed"] == "rcdocker"
    assert (
        Tag.objects.get(repository__registry__name="rcdocker", repository__name=repo).digest
        == info.digest
    )


def test_basic_auth_as_api_key_and_as_a_person(demo, pushed, password):
    repo, _ = pushed
    promoter_user = user_with("Promote Packages", username="release-bot")
    user_with("View & Download Packages", username=promoter_user.username)
    key = make_key("system")
    api = Api(demo.url)
    fields = {"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"}

    as_person = api.post("/api/promotions/promote", data=fields, auth=("release-bot", password))
    as_key = api.post("/api/promotions/promote", data=fields, auth=("api", key))

    assert as_person.status_code == 200, as_person.text
    assert as_key.status_code == 200, as_key.text
    assert as_person.json()["user"] == "release-bot"
    # The key asked for what is already there: the same promotion comes back (issue 11).
    assert as_key.json()["id"] == as_person.json()["id"]


def test_promote_by_digest_keeps_the_tag(api, demo, pushed):
    repo, info = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=10)

    response = api.post(
        "/api/promotions/promote",
        json={"name": repo, "version": info.digest, "fromFeed": "devdocker", "toFeed": "rcdocker"},
    )

    assert response.status_code == 200, response.text
    assert (response.json()["version"], response.json()["digest"]) == ("1.0", info.digest)


def test_async_answers_202_with_a_status_location_that_reports_progress(api, demo, pushed):
    repo, info = pushed

    response = api.post(
        "/api/promotions/promote?async=true",
        json={"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"},
    )

    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert location.startswith("/api/promotions/status/")
    status = wait_for(
        lambda: (s := api.get(location).json())["status"] == "succeeded" and s, timeout=30
    )
    assert status["digest"] == info.digest
    progress = status["progress"]
    assert progress["percent"] == 100
    assert (
        progress["blobsTotal"]
        == (progress["blobsCopied"] + progress["blobsMounted"] + progress["blobsSkipped"])
        > 0
    )
    # Anyone who may view neither registry sees no such promotion.
    assert Api(demo.url).get(location).status_code in (200, 404)


def test_the_wait_is_bounded_then_answers_202(api, demo, pushed, settings):
    repo, _ = pushed
    # No worker picks the promotion up: the API must stop waiting and say where to look.
    settings.TASKS = {
        "default": {
            "BACKEND": "django.tasks.backends.dummy.DummyBackend",
            "QUEUES": ["default", "promotions"],
        }
    }
    settings.PROMOTER_API_WAIT_SECONDS = 1
    started = time.monotonic()

    response = api.post(
        "/api/promotions/promote",
        json={"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"},
    )

    assert response.status_code == 202, response.text
    assert 1 <= time.monotonic() - started < 10
    assert response.json()["status"] == "queued"
    assert api.get(response.headers["Location"]).json()["status"] == "queued"


def test_waits_for_the_real_worker(demo, pushed, admin_creds, real_worker, system_key):
    repo, info = pushed

    response = Api(demo.url, system_key).post(
        "/api/promotions/promote",
        data={"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    assert raw(demo, admin_creds, "rcdocker", repo) == raw(demo, admin_creds, "devdocker", repo)


def test_a_failed_promotion_is_400_with_the_reason(api, demo, pushed, monkeypatch):
    from registries import runner
    from registries.oci.errors import RegistryUnreachable

    def unreachable(promotion, live):
        raise RegistryUnreachable("rcdocker did not answer.")

    monkeypatch.setattr(runner, "_copy", unreachable)
    repo, _ = pushed

    response = api.post(
        "/api/promotions/promote",
        data={"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"},
    )

    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text.startswith("The promotion failed: rcdocker did not answer.")


# --- 400 / 403 / 404 ----------------------------------------------------------------------
def _promote(api: Api, **fields):
    body = {"name": "team/api", "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"}
    body.update({k: v for k, v in fields.items() if v is not ...})
    for k in [k for k, v in fields.items() if v is ...]:
        body.pop(k)
    return api.post("/api/promotions/promote", data=body)


def test_a_target_the_pipeline_forbids_is_400(api, pushed):
    repo, _ = pushed

    response = _promote(api, name=repo, toFeed="proddocker")

    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "devdocker promotes only to rcdocker" in response.text


INVALID = [
    ({"name": "Team/API"}, "is not a valid repository name"),
    ({"name": "team//api"}, "is not a valid repository name"),
    ({"name": "-api"}, "is not a valid repository name"),
    ({"group": "Team", "name": "api"}, "is not a valid repository name"),
    ({"version": ".1"}, "is not a valid tag"),
    ({"version": "a" * 129}, "is not a valid tag"),
    ({"version": "sha256:abc"}, "is not a valid tag"),
    ({"version": ...}, "version is required"),
    ({"name": ...}, "name is required"),
    ({"fromFeed": ...}, "fromFeed is required"),
    ({"version": ""}, "version is required"),
    ({"name": "team/api", "packageName": "team/web"}, "Give only one of name or packageName"),
    ({"comments": "nul\x00here"}, "comments contains control characters"),
    ({"comments": "x" * 4001}, "the limit is 4000"),
    ({"name": "ünïcode/api"}, "is not a valid repository name"),
    ({"version": "1.0🚀"}, "is not a valid tag"),
]


def test_invalid_input_is_400_with_a_plain_reason(api):
    for fields, message in INVALID:
        response = _promote(api, **fields)

        assert response.status_code == 400, (fields, response.text)
        assert response.headers["Content-Type"].startswith("text/plain")
        assert message in response.text, (fields, response.text)
    assert not Promotion.objects.exists()


def test_missing_unknown_and_unauthorized_keys_are_403(api, demo, pushed):
    repo, _ = pushed
    view_only = make_key("feed", feeds=["devdocker", "rcdocker"], permissions=["view"])

    missing = _promote(api.anonymous(), name=repo)
    unknown = _promote(Api(demo.url, "pk_not-a-key"), name=repo)
    unknown_in_body = Api(demo.url).post(
        "/api/promotions/promote",
        json={
            "name": repo,
            "version": "1.0",
            "fromFeed": "devdocker",
            "toFeed": "rcdocker",
            "API_Key": "pk_not-a-key",
        },
    )
    unauthorized = _promote(Api(demo.url, view_only), name=repo)

    # No key at all: 401, as ProGet; a key that is not one, or lacks Promote: 403.
    assert [r.status_code for r in (missing, unknown, unknown_in_body, unauthorized)] == [
        401,
        403,
        403,
        403,
    ]
    assert "API key is required" in missing.text
    assert "not valid" in unknown_in_body.text
    assert "needs Promote Packages on rcdocker" in unauthorized.text
    assert not Promotion.objects.exists()


def test_revoked_key_is_403(api, demo, pushed):
    repo, _ = pushed
    key = make_key("system")
    from accounts.models import ApiKey

    ApiKey.objects.update(revoked_at="2020-01-01T00:00:00Z")

    assert _promote(Api(demo.url, key), name=repo).status_code == 403


def test_unknown_feed_repository_or_tag_is_404(api, pushed):
    repo, _ = pushed
    for fields, message in [
        ({"fromFeed": "nodocker"}, "There is no registry called 'nodocker'"),
        ({"toFeed": "nodocker"}, "There is no registry called 'nodocker'"),
        ({"fromFeed": "Not A Feed"}, "There is no registry called"),
        ({"name": "team/never-pushed"}, "in devdocker/team/never-pushed"),
        ({"version": "9.9"}, f"There is no tag 9.9 in devdocker/{repo}"),
        ({"version": "sha256:" + "0" * 64}, "There is no image sha256:000"),
    ]:
        response = _promote(api, **{"name": repo, **fields})

        assert response.status_code == 404, (fields, response.text)
        assert message in response.text, (fields, response.text)


def test_a_source_the_key_may_not_view_is_404(demo, pushed):
    repo, _ = pushed
    other = make_key("feed", feeds=["rcdocker"], permissions=["view", "promote"])

    response = _promote(Api(demo.url, other), name=repo)

    assert response.status_code == 404
    assert "no registry called 'devdocker'" in response.text


def test_list_is_filtered_by_what_the_caller_may_view(api, demo, pushed):
    repo, _ = pushed
    assert _promote(api, name=repo).status_code == 200
    outsider = make_key("feed", feeds=["proddocker"], permissions=["view"])
    viewer = make_key("feed", feeds=["rcdocker"], permissions=["view"])

    assert Api(demo.url, outsider).get("/api/promotions/list").json() == []
    assert [p["repository"] for p in Api(demo.url, viewer).get("/api/promotions/list").json()] == [
        repo
    ]
    group, _, name = repo.rpartition("/")
    for params in (
        {"group": group, "package": name},
        {"groupName": group},
        {"packageName": repo},
        {"package": name},
        {"version": "1.0"},
        {"fromFeed": "devdocker"},
    ):
        assert [p["repository"] for p in api.get("/api/promotions/list", params=params).json()] == [
            repo
        ], params
    for params in (
        {"fromFeed": "rcdocker"},
        {"toFeed": "proddocker"},
        {"version": "2.0"},
        {"group": "other"},
        {"packageName": "other/app"},
    ):
        assert api.get("/api/promotions/list", params=params).json() == [], params
