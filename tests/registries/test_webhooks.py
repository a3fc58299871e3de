"""Webhooks end to end: a loopback receiver gets every event, signed; retries with backoff
through the real worker; a receiver that never answers does not hold up a promotion."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django_tasks_db.models import DBTaskResult

from accounts.permissions import Principal
from registries.models import Promotion, Registry, Tag, Webhook, WebhookDelivery
from registries.services.approvals import approval_decide, approval_request
from registries.services.policies import policy_update
from registries.services.promotions import promotion_request
from registries.services.tags import tag_roll_back
from registries.services.webhooks import webhook_create, webhook_send_test
from tests.conftest import user_with, wait_for
from tests.support.images import push_image
from tests.support.receiver import Receiver, Silent

pytestmark = pytest.mark.django_db(transaction=True)

ALL_EVENTS = [
    "promotion.succeeded",
    "promotion.failed",
    "promotion.rolled_back",
    "approval.requested",
    "approval.decided",
    "push",
]


def reg(name: str) -> Registry:
    return Registry.objects.get(name=name)


def admin() -> Principal:
    return Principal(user=get_user_model().objects.get(username="Admin"))


def hook(url: str, events=ALL_EVENTS, registry: str | None = None):
    return webhook_create(
        registry=reg(registry) if registry else None,
        actor=admin(),
        values={"name": "ci", "url": url, "events": list(events)},
    )


def push(demo, repo, tmp_path, tag="1.0"):
    info = push_image(
        demo.hostport,
        f"devdocker/{repo}",
        tag,
        layers=1,
        layer_size=1024,
        creds="Admin:correct horse battery staple",
        tmp_path=tmp_path,
    )
    assert wait_for(
        lambda: Tag.objects.filter(
            repository__registry__name="devdocker", repository__name=repo, digest=info.digest
        ).exists(),
        timeout=10,
    )
    return info


def test_every_event_reaches_the_receiver_signed(demo, unique_repo, tmp_path, monkeypatch):
    with Receiver() as receiver:
        webhook, secret = hook(receiver.url)

        first = push(demo, unique_repo, tmp_path)  # push
        policy_update(registry=reg("rcdocker"), actor=admin(), values={"approvals_required": 1})
        asked = approval_request(  # approval.requested
            source=reg("devdocker"),
            repository=unique_repo,
            tag="1.0",
            target=reg("rcdocker"),
            actor=admin(),
        )
        approver = Principal(user=user_with("Approve Promotions", registry="rcdocker"))
        done = approval_decide(request=asked, actor=approver, approve=True)  # approval.decided
        assert Promotion.objects.get(pk=done.promotion_id).status == "succeeded"
        policy_update(registry=reg("rcdocker"), actor=admin(), values={"approvals_required": 0})
        push(demo, unique_repo, tmp_path)
        promotion_request(  # promotion.succeeded (again), with an earlier digest to go back to
            source=reg("devdocker"),
            repository=unique_repo,
            tag="1.0",
            target=reg("rcdocker"),
            actor=admin(),
        )
        tag = Tag.objects.get(repository__registry__name="rcdocker", repository__name=unique_repo)
        tag_roll_back(tag=tag, actor=admin())  # promotion.rolled_back

        from registries import runner
        from registries.oci.errors import RegistryUnreachable

        def unreachable(promotion, live):
            raise RegistryUnreachable("rcdocker did not answer.")

        monkeypatch.setattr(runner, "_copy", unreachable)
        failed = promotion_request(  # promotion.failed
            source=reg("devdocker"),
            repository=unique_repo,
            tag="1.0",
            target=reg("rcdocker"),
            actor=admin(),
            comment="will fail",
        )
        failed.refresh_from_db()
        assert failed.status == "failed"
        webhook_send_test(webhook=webhook, actor=admin())  # test

        for event in [*ALL_EVENTS, "test"]:
            received = receiver.wait_for(event)
            assert received.signed_by(secret), event
            assert not received.signed_by("another secret")
            body = received.json
            assert (body["version"], body["event"]) == (1, event)
            assert received.headers["Content-Type"] == "application/json"
        by_event = {r.event: r.json for r in receiver.received}
        assert by_event["push"]["data"]["push"]["digest"] in {first.digest, tag.digest}
        assert by_event["approval.requested"]["data"]["request"]["repository"] == unique_repo
        assert by_event["approval.decided"]["data"]["decision"]["approved"] is True
        assert by_event["promotion.failed"]["data"]["promotion"]["comment"] == "will fail"
        assert "did not answer" in by_event["promotion.failed"]["data"]["promotion"]["error"]
        assert by_event["promotion.rolled_back"]["data"]["rollBack"]["digest"] == first.digest
        succeeded = [r.json for r in receiver.received if r.event == "promotion.succeeded"]
        assert succeeded[0]["data"]["promotion"]["digest"] == first.digest
    log = WebhookDelivery.objects.filter(webhook=webhook)
    assert log.count() == len(receiver.received)
    assert set(log.values_list("status", "response_code", "attempts")) == {("succeeded", 200, 1)}
    assert all(d.duration_ms is not None for d in log)


def test_a_webhook_of_one_registry_hears_only_that_registry(demo, unique_repo, tmp_path):
    with Receiver() as mine, Receiver() as other:
        hook(mine.url, events=["push"], registry="devdocker")
        hook(other.url, events=["push"], registry="proddocker")

        push(demo, unique_repo, tmp_path)

        mine.wait_for("push")
        assert other.received == []


@pytest.fixture
def quick_retries(monkeypatch):
    """The real worker retries deliveries after 0.1 s, 0.2 s, … (set before it starts)."""
    monkeypatch.setenv("PROMOTER_WEBHOOK_BACKOFF", "0.1")


def test_a_receiver_failing_twice_gets_one_delivery_after_two_retries(
    quick_retries, real_worker, demo, client
):
    with Receiver(script=[500, 500]) as receiver:
        webhook, secret = hook(receiver.url)

        webhook_send_test(webhook=webhook, actor=admin())

        assert wait_for(
            lambda: WebhookDelivery.objects.filter(webhook=webhook, status="succeeded").exists(),
            timeout=60,
        ), list(WebhookDelivery.objects.values("status", "attempts", "error"))
    delivery = WebhookDelivery.objects.get(webhook=webhook)  # exactly one delivery logged
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 3, 200)
    assert len(receiver.received) == 3
    assert len({r.body for r in receiver.received}) == 1  # the same body each time
    assert all(r.signed_by(secret) for r in receiver.received)
    # The delivery log page says so, and offers Redeliver.
    client.force_login(get_user_model().objects.get(username="Admin"))
    page = client.get(f"/webhooks/{webhook.pk}/").content.decode()
    assert "Succeeded" in page and ">200<" in page and "Redeliver" in page


@pytest.fixture
def patient_receivers(monkeypatch):
    """The real worker waits long for an answer, so a silent receiver stays pending."""
    monkeypatch.setenv("PROMOTER_WEBHOOK_TIMEOUT", "300")


def test_a_receiver_that_never_answers_does_not_hold_up_the_promotion(
    patient_receivers, real_worker, demo, unique_repo, tmp_path
):
    with Silent() as silent:
        webhook, _ = hook(silent.url, events=["push", "promotion.succeeded"])
        push(demo, unique_repo, tmp_path)
        # The worker is sending the push event now, and waits on the silent receiver.
        assert wait_for(
            lambda: DBTaskResult.objects.filter(
                task_path="registries.tasks.deliver_webhook", status="RUNNING"
            ).exists(),
            timeout=30,
        ), "the worker never started the delivery"

        promotion = promotion_request(
            source=reg("devdocker"),
            repository=unique_repo,
            tag="1.0",
            target=reg("rcdocker"),
            actor=admin(),
        )

        assert wait_for(lambda: Promotion.objects.get(pk=promotion.pk).is_finished, timeout=120), (
            "the promotion did not finish"
        )
        assert Promotion.objects.get(pk=promotion.pk).status == "succeeded"
        deliveries = dict(
            WebhookDelivery.objects.filter(webhook=webhook).values_list("event", "status")
        )
        assert deliveries == {"push": "pending", "promotion.succeeded": "pending"}
        assert not WebhookDelivery.objects.filter(webhook=webhook, attempts__gt=0).exists()


def test_webhook_pages_create_send_test_and_redeliver(demo, client, settings):
    settings.PROMOTER_WEBHOOK_ATTEMPTS = 1  # the 503 fails the delivery at once
    client.force_login(get_user_model().objects.get(username="Admin"))
    with Receiver(script=[503]) as receiver:
        created = client.post(
            "/webhooks/new",
            {
                "name": "deploys",
                "url": receiver.url,
                "events": ["promotion.succeeded"],
                "active": "on",
            },
        )
        assert created.status_code == 200
        page = created.content.decode()
        webhook = Webhook.objects.get(name="deploys")
        assert "shown this once" in page

        client.post(f"/webhooks/{webhook.pk}/test")
        delivery = WebhookDelivery.objects.get(webhook=webhook)
        assert (delivery.event, delivery.status, delivery.response_code) == ("test", "failed", 503)
        log = client.get(f"/webhooks/{webhook.pk}/").content.decode()
        assert "The receiver answered 503." in log and "Redeliver" in log
        redelivered = client.post(f"/webhooks/deliveries/{delivery.pk}/redeliver")
        assert redelivered.status_code == 302
        assert wait_for(
            lambda: WebhookDelivery.objects.filter(webhook=webhook, status="succeeded").exists(),
            timeout=30,
        )
    assert [r.event for r in receiver.received][-1] == "test"
    assert WebhookDelivery.objects.filter(webhook=webhook).count() == 2
    bad = client.post("/webhooks/new", {"name": "x", "url": "ftp://nowhere", "events": ["push"]})
    assert bad.status_code == 400
