"""Policies through the HTTP API: a refused promotion is 409 with the checklist as JSON (each
rule), approvals from two people start the promotion, webhooks with their signed test event."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from accounts.permissions import Principal
from registries.models import Promotion, Registry, Tag
from registries.services.promotions import promotion_request
from tests.api.conftest import Api
from tests.conftest import PASSWORD, user_with, wait_for
from tests.support.images import push_image
from tests.support.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


def admin() -> Principal:
    return Principal(user=get_user_model().objects.get(username="Admin"))


def promote_as_admin(repo: str, source: str, target: str) -> Promotion:
    promotion = promotion_request(
        source=Registry.objects.get(name=source),
        repository=repo,
        tag="1.0",
        target=Registry.objects.get(name=target),
        actor=admin(),
    )
    promotion.refresh_from_db()
    return promotion


@pytest.fixture
def in_rc(demo, admin_creds, unique_repo, tmp_path):
    info = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        layers=1,
        creds=admin_creds,
        tmp_path=tmp_path,
    )
    assert wait_for(lambda: Tag.objects.filter(repository__name=unique_repo).exists(), timeout=10)
    assert promote_as_admin(unique_repo, "devdocker", "rcdocker").status == "succeeded"
    return unique_repo, info


RULES = {
    "approvals": {"approvalsRequired": 2},
    "soak": {"soakSeconds": 86400},
    "signed": {"requireSignature": True},
    "labels": {"requiredLabels": [{"key": "org.opencontainers.image.revision"}]},
    "immutable": {"immutableTags": True},
}


@pytest.mark.parametrize("rule", list(RULES))
def test_a_promotion_the_policy_refuses_is_409_with_the_checklist(
    api, in_rc, demo, admin_creds, tmp_path, rule
):
    repo, info = in_rc
    if rule == "immutable":  # proddocker holds 1.0 at another digest
        assert promote_as_admin(repo, "rcdocker", "proddocker").status == "succeeded"
        again = push_image(
            demo.hostport,
            f"devdocker/{repo}",
            "1.0",
            layers=1,
            creds=admin_creds,
            tmp_path=tmp_path,
        )
        assert wait_for(
            lambda: Tag.objects.filter(repository__name=repo, digest=again.digest).exists(),
            timeout=10,
        )
        assert promote_as_admin(repo, "devdocker", "rcdocker").status == "succeeded"
    set_policy = api.post("/api/policies/update/proddocker", json=RULES[rule])
    assert set_policy.status_code == 200, set_policy.text
    # A person who may promote into proddocker and nothing more (a system key holds
    # Overwrite Tags, as everything).
    promoter = user_with("Promote Packages", registry="proddocker")
    user_with("View & Download Packages", username=promoter.username)

    answer = Api(demo.url).post(
        "/api/promotions/promote",
        json={"name": repo, "version": "1.0", "fromFeed": "rcdocker", "toFeed": "proddocker"},
        auth=(promoter.username, PASSWORD),
    )

    assert answer.status_code == 409, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["error"].startswith("The policy of proddocker is not met")
    assert body["policy"]["target"] == "proddocker" and body["policy"]["ok"] is False
    assert body["policy"]["unmet"] == [rule]
    (check,) = body["policy"]["rules"]
    assert (check["rule"], check["ok"]) == (rule, False) and check["message"]
    assert not Promotion.objects.filter(target__name="proddocker", status="queued").exists()


def test_approvals_through_the_api_then_the_promotion_runs_by_itself(api, in_rc, demo):
    repo, info = in_rc
    api.post("/api/policies/update/proddocker", json={"approvalsRequired": 2})
    requester = user_with("Promote Packages", registry="proddocker")
    user_with("View & Download Packages", username=requester.username)
    user_with("Approve Promotions", registry="proddocker", username=requester.username)
    approvers = [user_with("Approve Promotions", registry="proddocker") for _ in range(2)]
    as_requester = {"auth": (requester.username, PASSWORD)}
    fields = {"name": repo, "version": "1.0", "fromFeed": "rcdocker", "comments": "Release"}

    refused = Api(demo.url).post("/api/promotions/promote", json=fields, **as_requester)
    assert refused.status_code == 409
    assert refused.json()["policy"]["rules"][0]["message"] == "0 of 2 approvals"
    asked = Api(demo.url).post("/api/approvals/request", json=fields, **as_requester)
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    assert (asked.json()["status"], asked.json()["digest"]) == ("pending", info.digest)
    decide = f"/api/approvals/decide/{request_id}"

    own = Api(demo.url).post(decide, json={"approve": True}, **as_requester)
    assert own.status_code == 403 and "another person" in own.json()["error"]
    waiting = Api(demo.url).get(
        "/api/approvals/list?waiting=true", auth=(approvers[0].username, PASSWORD)
    )
    assert [r["id"] for r in waiting.json()] == [request_id]
    first = Api(demo.url).post(
        decide, json={"approve": True, "comment": "ok"}, auth=(approvers[0].username, PASSWORD)
    )
    assert first.status_code == 200 and first.json()["promotionId"] is None
    twice = Api(demo.url).post(
        decide, json={"approve": True}, auth=(approvers[0].username, PASSWORD)
    )
    assert twice.status_code == 409 and twice.json()["policy"] is None
    last = Api(demo.url).post(
        decide, json={"approve": True}, auth=(approvers[1].username, PASSWORD)
    )

    assert last.status_code == 200, last.text
    assert last.json()["status"] == "approved"
    status = api.get(f"/api/promotions/status/{last.json()['promotionId']}").json()
    assert (status["status"], status["digest"], status["user"]) == (
        "succeeded",
        info.digest,
        requester.username,
    )
    assert [d["by"] for d in last.json()["decisions"]] == [a.username for a in approvers]


def test_webhooks_through_the_api_send_a_signed_test(api, demo):
    with Receiver() as receiver:
        created = api.post(
            "/api/webhooks/create",
            json={"name": "ci", "url": receiver.url, "events": ["push", "promotion.succeeded"]},
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        assert len(hook["secret"]) >= 16 and hook["feed"] is None

        sent = api.post(f"/api/webhooks/test/{hook['id']}")

        assert sent.status_code == 202
        received = receiver.wait_for("test")
        assert received.signed_by(hook["secret"])
        log = api.get(f"/api/webhooks/deliveries/{hook['id']}").json()
        assert [(d["event"], d["status"], d["responseCode"]) for d in log] == [
            ("test", "succeeded", 200)
        ]
        listed = api.get("/api/webhooks/list").json()
        assert [h["name"] for h in listed] == ["ci"] and "secret" not in listed[0]
    bad = api.post(
        "/api/webhooks/create",
        json={"name": "x", "url": "http://hooks.example.com", "events": ["nope"]},
    )
    assert bad.status_code == 400 and "Unknown events: nope" in bad.json()["error"]
    assert api.post(f"/api/webhooks/delete/{hook['id']}").json() == {"deleted": hook["id"]}
