"""Issue 11's weak spots: enumeration, notifications, credentials on pages, sign-in
throttling, promotion floods, and the Content-Security-Policy."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
import requests
from django.conf import settings
from django.db.models import F

from accounts.models import LoginFailure, Task
from registries.connections import bundled_client
from registries.models import HistoryEvent, Promotion, Registry, Tag
from tests.conftest import PASSWORD, user_with, wait_for
from tests.support.images import push_image


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- enumeration ------------------------------------------------------------------------------
def test_anonymous_gets_404_for_hidden_and_missing_registries_alike(demo):
    Registry.objects.create(name="hidden")  # nobody is granted View on it
    for path in ("/registries/{}/", "/registries/{}/images/team/app", "/registries/{}/manage"):
        hidden = requests.get(demo.url + path.format("hidden"), timeout=30, allow_redirects=False)
        missing = requests.get(
            demo.url + path.format("nosuchone"), timeout=30, allow_redirects=False
        )
        # Anonymous visitors are sent to sign in (issue 15) for both alike: nothing tells
        # a hidden registry from a missing one.
        assert hidden.status_code == missing.status_code == 302, path
        for answer in (hidden, missing):
            assert answer.headers["Location"].startswith("/accounts/login/?next="), path
    hidden = requests.get(f"{demo.url}/api/management/feeds/get/hidden", timeout=30)
    missing = requests.get(f"{demo.url}/api/management/feeds/get/nosuchone", timeout=30)
    assert hidden.status_code == missing.status_code


# --- notifications ----------------------------------------------------------------------------
def notify(demo, payload: bytes | dict) -> requests.Response:
    headers = {"Authorization": f"Bearer {settings.PROMOTER_NOTIFY_SECRET}"}
    if isinstance(payload, dict):
        return requests.post(
            f"{demo.url}/registry/notifications", json=payload, headers=headers, timeout=30
        )
    headers["Content-Type"] = "application/json"
    return requests.post(
        f"{demo.url}/registry/notifications", data=payload, headers=headers, timeout=30
    )


def test_a_forged_delete_changes_nothing_while_the_registry_has_the_image(demo, pushed):
    repo, info = pushed
    assert wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=10)
    forged = {
        "id": "forged-1",
        "action": "delete",
        "target": {"repository": f"devdocker/{repo}", "digest": info.digest},
        "actor": {"name": "Admin"},
    }

    answer = notify(demo, {"events": [forged]})

    assert answer.status_code == 200 and answer.json()["outcomes"] == ["not-deleted"]
    assert Tag.objects.filter(repository__name=repo, digest=info.digest).exists()
    assert not HistoryEvent.objects.filter(repository=repo, action="deleted").exists()


def test_a_real_delete_is_confirmed_and_recorded(demo, pushed):
    repo, info = pushed
    assert wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=10)

    bundled_client().delete_manifest(f"devdocker/{repo}", info.digest)

    assert wait_for(lambda: not Tag.objects.filter(repository__name=repo).exists(), timeout=10)
    assert HistoryEvent.objects.filter(repository=repo, action="deleted").count() == 1


@pytest.mark.parametrize(
    "events",
    [
        [{"action": "push", "target": "x"}],
        [{"action": "delete", "target": ["x"]}],
        [{"action": "push", "target": {"repository": 7, "tag": []}}],
        [{"action": "push", "target": {"repository": "devdocker/../x", "tag": "1"}}],
        [{"action": "delete", "target": {"repository": "devdocker/a", "digest": {"x": 1}}}],
        [{"action": "push", "actor": "me", "target": {"repository": "devdocker/a"}}],
        [{"action": ["push"]}],
    ],
)
def test_malformed_events_are_invalid_not_a_500(demo, events):
    answer = notify(demo, {"events": events})
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcomes"] in (["invalid"], ["ignored"])


def test_deeply_nested_json_is_a_400_not_a_500(demo):
    deep = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert notify(demo, deep).status_code == 400


# --- credentials on pages ---------------------------------------------------------------------
def test_a_cross_site_form_with_a_cached_basic_credential_does_nothing(demo):
    """The browser resends a cached Basic credential with a forged cross-site POST."""
    answer = requests.post(
        f"{demo.url}/administration/tasks",
        data={"name": "Forged", "permissions": ["view"]},
        headers={"Authorization": basic("Admin", PASSWORD), "Origin": "https://evil.example"},
        timeout=30,
        allow_redirects=False,
    )
    assert answer.status_code == 403
    assert not Task.objects.filter(name="Forged").exists()


def test_keys_work_on_the_api_only(demo):
    from accounts.models import ApiKey
    from accounts.permissions import Principal
    from accounts.services import api_key_create

    _, raw = api_key_create(kind=ApiKey.Kind.SYSTEM, name="everything", actor=Principal.promoter())
    assert requests.get(f"{demo.url}/api/management/feeds/list?key={raw}", timeout=30).ok
    page = requests.get(f"{demo.url}/administration/?key={raw}", timeout=30, allow_redirects=False)
    assert page.status_code in (302, 403)  # Anonymous on pages: sign in, or refused


# --- sign-in throttling -----------------------------------------------------------------------
def test_password_spraying_from_one_address_backs_off(demo, client):
    from django.test import Client

    for n in range(20):
        get = client.get(
            "/auth/token", headers={"Authorization": basic(f"victim{n}", "Winter2026!")}
        )
        assert get.status_code == 401
    refused = client.get("/auth/token", headers={"Authorization": basic("Admin", PASSWORD)})
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 15 * 60
    # Another address is not slowed down by this one.
    elsewhere = Client(REMOTE_ADDR="10.20.30.40")
    assert (
        elsewhere.get("/auth/token", headers={"Authorization": basic("Admin", PASSWORD)})
    ).status_code == 200


def test_nobody_can_lock_an_account_out(demo):
    from django.test import Client

    attacker = Client(REMOTE_ADDR="10.66.66.66")
    statuses = [
        attacker.get("/auth/token", headers={"Authorization": basic("Admin", "guess")}).status_code
        for _ in range(30)
    ]
    assert statuses.count(401) == 10 and statuses.count(429) == 20  # refused ones not counted

    admin = Client(REMOTE_ADDR="10.1.1.1")
    slowed = admin.get("/auth/token", headers={"Authorization": basic("Admin", PASSWORD)})
    assert slowed.status_code == 429 and int(slowed["Retry-After"]) <= 60  # a wait, not a lock
    LoginFailure.objects.update(created_at=F("created_at") - dt.timedelta(seconds=61))
    ok = admin.get("/auth/token", headers={"Authorization": basic("Admin", PASSWORD)})
    assert ok.status_code == 200


def test_guessing_one_account_from_many_addresses_backs_off(demo):
    from django.test import Client

    user_with(username="carol")
    for n in range(10):
        spread = Client(REMOTE_ADDR=f"10.0.{n}.1")
        assert (
            spread.get(
                "/auth/token", headers={"Authorization": basic("carol", "guess")}
            ).status_code
            == 401
        )
    eleventh = Client(REMOTE_ADDR="10.0.99.1")
    assert (
        eleventh.get("/auth/token", headers={"Authorization": basic("carol", "guess")}).status_code
        == 429
    )


# --- promotion floods -------------------------------------------------------------------------
def test_a_no_op_promotion_is_recorded_once(demo, pushed):
    repo, _ = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=10)
    body = {"packageName": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"}

    answers = [
        requests.post(
            f"{demo.url}/api/promotions/promote", json=body, auth=("Admin", PASSWORD), timeout=60
        )
        for _ in range(10)
    ]

    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert Promotion.objects.filter(repository=repo).count() == 1
    assert HistoryEvent.objects.filter(repository=repo, action="promoted").count() == 1


def test_asking_again_after_a_signature_arrived_carries_the_signature(
    demo, pushed, admin_creds, tmp_path
):
    """ "Already there" holds only while nothing new would travel: a signature pushed after
    the first promotion makes the next request a real promotion that brings it along."""
    repo, info = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=10)
    body = {"packageName": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"}

    def promote() -> dict:
        answer = requests.post(
            f"{demo.url}/api/promotions/promote", json=body, auth=("Admin", PASSWORD), timeout=60
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    first = promote()
    signature = info.digest.replace(":", "-") + ".sig"
    push_image(
        demo.hostport,
        f"devdocker/{repo}",
        signature,
        layers=1,
        layer_size=256,
        creds=admin_creds,
        tmp_path=tmp_path / "sig",
    )
    wait_for(lambda: Tag.objects.filter(repository__name=repo, name=signature).exists(), 10)

    second = promote()

    assert second["id"] != first["id"] and second["status"] == "succeeded", second
    assert bundled_client().head_manifest(f"rcdocker/{repo}", signature) is not None
    assert HistoryEvent.objects.filter(repository=repo, tag="1.0", action="promoted").count() == 2
    # The signature is on record as having travelled with the second promotion.
    travelled = HistoryEvent.objects.get(repository=repo, tag=signature, action="promoted")
    assert (travelled.subject, travelled.promotion_id) == (info.digest, second["id"])


def test_promotion_requests_are_rate_limited_per_principal(demo, pushed, settings):
    settings.PROMOTER_PROMOTIONS_PER_MINUTE = 5
    repo, _ = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=10)
    Registry.objects.bulk_create(Registry(name=f"flood{i}") for i in range(7))
    Registry.objects.filter(name="devdocker").update(promote_to=None)  # any target will do
    user_with("Promote Packages", username="low")
    user_with("View & Download Packages", username="low")

    statuses = []
    for i in range(7):
        answer = requests.post(
            f"{demo.url}/api/promotions/promote?async=true",
            json={
                "packageName": repo,
                "version": "1.0",
                "fromFeed": "devdocker",
                "toFeed": f"flood{i}",
            },
            auth=("low", PASSWORD),
            timeout=60,
        )
        statuses.append(answer.status_code)

    assert statuses[:5] == [202] * 5 and statuses[5:] == [429, 429]
    assert Promotion.objects.filter(actor="low").count() == 5
    # Someone else is not held back by it.
    other = requests.post(
        f"{demo.url}/api/promotions/promote?async=true",
        json={"packageName": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "flood6"},
        auth=("Admin", PASSWORD),
        timeout=60,
    )
    assert other.status_code == 202, other.text


# --- CSP --------------------------------------------------------------------------------------
def test_pages_carry_a_strict_content_security_policy(demo):
    answer = requests.get(f"{demo.url}/accounts/login/", timeout=30)
    policy = answer.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'"  # no inline scripts, no eval
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert directives["style-src"].startswith("'self'")
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "<script>" not in answer.text and "<style>" not in answer.text
