"""The pages of policies before production pass axe-core like every other page (light and
dark, desktop and phone): the promote dialog's checklist, approvals, webhooks, the policy."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from accounts.permissions import Principal
from registries.models import Promotion, Registry, Tag
from registries.services.approvals import approval_request
from registries.services.policies import policy_update
from registries.services.promotions import promotion_request
from registries.services.webhooks import webhook_create, webhook_send_test
from tests.browser_support import login
from tests.conftest import PASSWORD, user_with, wait_for
from tests.support.images import push_image
from tests.support.receiver import Receiver
from tests.test_pages_browser import Checker, axe_script  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_policy_pages_pass_axe(
    browser,
    page,
    demo,
    admin_creds,
    unique_repo,
    tmp_path,
    axe_script,  # noqa: F811 (the fixture imported above)
    settings,
):
    admin = Principal(user=get_user_model().objects.get(username="Admin"))
    push_image(
        demo.hostport, f"devdocker/{unique_repo}", "1.0", creds=admin_creds, tmp_path=tmp_path
    )
    assert wait_for(lambda: Tag.objects.filter(repository__name=unique_repo).exists())
    reg = {r.name: r for r in Registry.objects.all()}
    promotion = promotion_request(
        source=reg["devdocker"],
        repository=unique_repo,
        tag="1.0",
        target=reg["rcdocker"],
        actor=admin,
    )
    promotion.refresh_from_db()
    assert promotion.status == Promotion.Status.SUCCEEDED
    policy_update(
        registry=reg["proddocker"],
        actor=admin,
        values={"approvals_required": 2, "immutable_tags": True},
    )
    requester = user_with("Promote Packages", registry="proddocker")
    user_with("View & Download Packages", username=requester.username)
    asked = approval_request(
        source=reg["rcdocker"],
        repository=unique_repo,
        tag="1.0",
        target=reg["proddocker"],
        actor=Principal(user=requester),
        comment="Release 1.0",
    )
    settings.PROMOTER_WEBHOOK_BACKOFF = 0.05  # the log shows a retried delivery at once
    settings.PROMOTER_WEBHOOK_BACKOFF = 0.05  # the log shows a retried delivery at once
    with Receiver(script=[500]) as receiver:
        hook, _ = webhook_create(
            registry=None,
            actor=admin,
            values={"name": "ci", "url": receiver.url, "events": ["push"]},
        )
        webhook_send_test(webhook=hook, actor=admin)
    url = demo.url
    login(page, url, "Admin", PASSWORD)
    checker = Checker(page, axe_script, "Admin")

    checker.goto(f"{url}/registries/rcdocker/images/{unique_repo}:1.0")
    checker.open_menu_item("#promote-action")
    checker.dialog("dialog#promote-dialog #policy-checklist")
    checker.check("promote dialog with a checklist", shots=True)
    checker.close_dialog()
    pages = [
        ("policy", "/registries/proddocker/policy"),
        ("manage feed with the policy", "/registries/proddocker/manage"),
        ("webhooks", "/webhooks/"),
        ("webhook form", "/webhooks/new"),
        ("webhook", f"/webhooks/{hook.pk}/"),
        ("webhook edit", f"/webhooks/{hook.pk}/edit"),
        ("approvals", "/approvals/"),
        ("approval request", f"/approvals/{asked.pk}/"),
    ]
    for name, path in pages:
        checker.goto(url + path)
        checker.check(name, shots=name == "webhook")
    assert not checker.problems, "\n".join(checker.problems)
