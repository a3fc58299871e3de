"""Script injection in comments and descriptions is shown as text and never runs."""

from __future__ import annotations

import pytest

from accounts.permissions import Principal
from registries.models import Registry, Tag
from registries.services.promotions import promotion_request
from tests.browser_support import login
from tests.support.accounts import PASSWORD
from tests.support.wait import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PAYLOAD = (
    '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    '"><svg onload="window.__xss = 3">'
)


def test_injected_markup_is_escaped_everywhere(demo, pushed, page):
    from django.contrib.auth import get_user_model

    repo, _ = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=5)
    Registry.objects.filter(name="devdocker").update(description=PAYLOAD)
    admin = Principal(user=get_user_model().objects.get(username="Admin"))
    promotion = promotion_request(
        source=Registry.objects.get(name="devdocker"),
        repository=repo,
        tag="1.0",
        target=Registry.objects.get(name="rcdocker"),
        actor=admin,
        comment=PAYLOAD,
    )
    login(page, demo.url, "Admin", PASSWORD)

    for path in (
        "/",
        "/registries/devdocker/",
        f"/registries/rcdocker/images/{repo}:1.0?tab=history",
        "/promotions/",
        f"/promotions/{promotion.pk}/",
    ):
        page.goto(demo.url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("svg[onload], img[onerror]").count() == 0, path
    assert "<script>window.__xss = 1</script>" in page.locator("main").inner_text()
