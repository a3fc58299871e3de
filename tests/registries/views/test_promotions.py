"""Promotion pages without JavaScript: the form, progress page, roll back, Manage Feed."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from accounts.models import AuditEvent
from registries.models import HistoryEvent, Promotion, Registry, Tag
from tests.support.accounts import user_with

pytestmark = pytest.mark.django_db  # `demo` makes a test transactional (a live server reads)


def test_promote_form_posts_and_redirects_to_the_promotion(admin_client, indexed):
    repo, info = indexed
    url = f"/registries/devdocker/images/{repo}:1.0/promote"
    form = admin_client.get(url)
    assert form.status_code == 200
    assert "fixed: devdocker's Promote To registry is rcdocker" in form.content.decode()

    rc = Registry.objects.get(name="rcdocker")
    answer = admin_client.post(url, {"target": rc.pk, "comment": "ship it"})

    promotion = Promotion.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/promotions/{promotion.pk}/"
    detail = admin_client.get(answer["Location"]).content.decode()
    assert "Succeeded" in detail and "ship it" in detail
    assert f"/registries/rcdocker/images/{repo}:1.0" in detail


def test_promote_form_refuses_a_target_outside_the_pipeline(admin_client, indexed):
    repo, _ = indexed
    prod = Registry.objects.get(name="proddocker")
    answer = admin_client.post(
        f"/registries/devdocker/images/{repo}:1.0/promote", {"target": prod.pk, "comment": ""}
    )
    assert answer.status_code == 400
    assert not Promotion.objects.exists()


def test_promote_button_is_hidden_and_refused_without_promote_privilege(client, demo, indexed):
    repo, _ = indexed
    viewer = user_with("View & Download Packages")
    client.force_login(viewer)
    page = client.get(f"/registries/devdocker/images/{repo}:1.0").content.decode()
    assert 'id="promote-action"' not in page
    rc = Registry.objects.get(name="rcdocker")
    answer = client.post(
        f"/registries/devdocker/images/{repo}:1.0/promote", {"target": rc.pk, "comment": "sneaky"}
    )
    assert answer.status_code == 400
    assert "You may not promote" in answer.content.decode()
    assert not Promotion.objects.exists()


def test_htmx_promote_answers_with_the_progress_dialog(admin_client, indexed):
    repo, _ = indexed
    rc = Registry.objects.get(name="rcdocker")
    answer = admin_client.post(
        f"/registries/devdocker/images/{repo}:1.0/promote",
        {"target": rc.pk},
        HTTP_HX_REQUEST="true",
    )
    html = answer.content.decode()
    assert answer.status_code == 200
    assert 'id="promotion-progress"' in html and "<html" not in html


def test_roll_back_page_repoints_the_tag_and_records_history(
    admin_client, demo, admin_creds, unique_repo, tmp_path
):
    from accounts.permissions import Principal
    from registries.services.promotions import promotion_request
    from tests.support.images import push_image

    admin = Principal(user=get_user_model().objects.get(username="Admin"))
    dev, rc = Registry.objects.get(name="devdocker"), Registry.objects.get(name="rcdocker")
    first = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        creds=admin_creds,
        tmp_path=tmp_path / "a",
        seed=21,
    )
    promotion_request(source=dev, repository=unique_repo, tag="1.0", target=rc, actor=admin)
    push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        creds=admin_creds,
        tmp_path=tmp_path / "b",
        seed=22,
    )
    promotion_request(source=dev, repository=unique_repo, tag="1.0", target=rc, actor=admin)
    tag_url = f"/registries/rcdocker/images/{unique_repo}:1.0"
    assert 'id="rollback-action"' in admin_client.get(tag_url).content.decode()

    dialog = admin_client.get(tag_url + "/rollback", HTTP_HX_REQUEST="true").content.decode()
    assert 'name="comment"' in dialog and 'id="rollback-dialog"' in dialog

    answer = admin_client.post(tag_url + "/rollback", {"comment": "  1.0 breaks sign-in  "})

    assert answer.status_code == 302
    tag = Tag.objects.get(repository__registry=rc, repository__name=unique_repo)
    assert tag.digest == first.digest
    event = HistoryEvent.objects.get(action="rolled_back", registry="rcdocker")
    # The comment is the person's why; the digest field holds the image rolled back to.
    assert (event.comment, event.digest, event.actor) == (
        "1.0 breaks sign-in",
        first.digest,
        "Admin",
    )
    history = admin_client.get(tag_url + "?tab=history").content.decode()
    assert "Rolled back" in history and "1.0 breaks sign-in" in history


def test_roll_back_refuses_a_comment_over_the_limit_and_changes_nothing(
    admin_client, demo, admin_creds, unique_repo, tmp_path
):
    from accounts.permissions import Principal
    from registries.models import COMMENT_MAX
    from registries.services.promotions import promotion_request
    from tests.support.images import push_image

    admin = Principal(user=get_user_model().objects.get(username="Admin"))
    dev, rc = Registry.objects.get(name="devdocker"), Registry.objects.get(name="rcdocker")
    for seed in (23, 24):
        push_image(
            demo.hostport,
            f"devdocker/{unique_repo}",
            "1.0",
            creds=admin_creds,
            tmp_path=tmp_path / str(seed),
            seed=seed,
        )
        promotion_request(source=dev, repository=unique_repo, tag="1.0", target=rc, actor=admin)
    tag = Tag.objects.get(repository__registry=rc, repository__name=unique_repo)
    tag_url = f"/registries/rcdocker/images/{unique_repo}:1.0"

    answer = admin_client.post(
        tag_url + "/rollback", {"comment": "x" * (COMMENT_MAX + 1)}, HTTP_HX_REQUEST="true"
    )

    assert answer.status_code == 400
    assert f"longer than {COMMENT_MAX} characters" in answer.content.decode()
    assert 'id="rollback-dialog"' in answer.content.decode()
    assert Tag.objects.get(pk=tag.pk).digest == tag.digest
    assert not HistoryEvent.objects.filter(action="rolled_back").exists()


def test_manage_feed_sets_promote_to_and_usage_type_is_fixed(admin_client):
    page = admin_client.get("/registries/devdocker/")
    assert 'href="/registries/devdocker/manage"' in page.content.decode()
    prod = Registry.objects.get(name="proddocker")
    answer = admin_client.post(
        "/registries/devdocker/manage",
        {
            "description": "dev builds",
            "usage_type": "validated",
            "promote_to": prod.pk,
            "active": "on",
            "endpoint": "",
            "namespace": "",
            "username": "",
            "password": "",
        },
    )
    assert answer.status_code == 302
    dev = Registry.objects.get(name="devdocker")
    assert dev.promote_to == prod and dev.description == "dev builds"
    assert dev.usage_type == "general"  # chosen at creation, not changed here


def test_manage_feed_clears_promote_to_with_the_empty_choice(admin_client):
    fields = {
        "description": "",
        "usage_type": "general",
        "active": "on",
        "endpoint": "",
        "namespace": "",
        "username": "",
        "password": "",
    }
    assert Registry.objects.get(name="devdocker").promote_to.name == "rcdocker"
    answer = admin_client.post("/registries/devdocker/manage", {**fields, "promote_to": ""})
    assert answer.status_code == 302
    assert Registry.objects.get(name="devdocker").promote_to is None
    assert AuditEvent.objects.filter(
        action="registry.updated", object_repr="devdocker", changes__promote_to=["rcdocker", ""]
    ).exists()


def test_manage_feed_is_refused_without_the_privilege(client, demo_db):
    client.force_login(user_with("View & Download Packages"))
    assert client.get("/registries/devdocker/manage").status_code == 403
    assert client.post("/registries/devdocker/manage", {"description": "x"}).status_code == 403


def test_registry_page_lists_recent_promotions_in_and_out(admin_client, indexed):
    repo, _ = indexed
    from accounts.permissions import Principal
    from registries.services.promotions import promotion_request

    admin = Principal(user=get_user_model().objects.get(username="Admin"))
    promotion_request(
        source=Registry.objects.get(name="devdocker"),
        repository=repo,
        tag="1.0",
        target=Registry.objects.get(name="rcdocker"),
        actor=admin,
    )
    for name in ("devdocker", "rcdocker"):
        html = admin_client.get(f"/registries/{name}/").content.decode()
        assert f"{repo}:1.0" in html and "devdocker → rcdocker" in html
