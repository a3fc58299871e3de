"""A signed-out visitor to a page that needs signing in lands on the sign-in page, and returns."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.test import Client

from registries.models import Promotion, Registry, Tag
from tests.accounts.helpers import grant
from tests.browser_support import screenshot
from tests.conftest import PASSWORD, user_with, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shared(demo, pushed):
    """A pushed image and a promotion of it: the kind of link people share."""
    repo, info = pushed
    assert wait_for(lambda: Tag.objects.filter(repository__name=repo, name="1.0").exists())
    promotion = Promotion.objects.create(
        source=Registry.objects.get(name="devdocker"),
        target=Registry.objects.get(name="rcdocker"),
        repository=repo,
        tag="1.0",
        digest=info.digest,
        actor="Admin",
        status=Promotion.Status.FAILED,
        error="simulated",
    )
    return repo, promotion


def protected_pages(repo: str, promotion: Promotion) -> list[str]:
    return [
        "/",
        "/registries/",
        "/audit/",
        "/registries/devdocker/",
        f"/registries/devdocker/images/{repo}",
        f"/registries/devdocker/images/{repo}:1.0",
        f"/registries/devdocker/images/{repo}:1.0?tab=history",
        f"/registries/devdocker/images/{repo}:1.0/promote",
        "/registries/devdocker/manage",
        "/registries/new",
        "/promotions/",
        f"/promotions/{promotion.pk}/",
        "/administration/",
        "/administration/users-tasks",
        "/administration/tasks",
        "/administration/api-keys",
        "/administration/api-keys/new",
        "/administration/users",
        "/administration/groups/new",
    ]


def test_every_protected_page_sends_a_signed_out_visitor_to_sign_in_and_back(shared):
    repo, promotion = shared
    for path in protected_pages(repo, promotion):
        visitor = Client()
        answer = visitor.get(path)
        assert answer.status_code == 302, path
        assert answer["Location"] == f"/accounts/login/?next={quote(path, safe='/')}", path

        signed_in = visitor.post(
            "/accounts/login/", {"username": "Admin", "password": PASSWORD, "next": path}
        )
        assert signed_in.status_code == 302 and signed_in["Location"] == path, path
        assert visitor.get(path).status_code == 200, path


def test_an_htmx_request_moves_the_whole_page_to_sign_in(shared):
    repo, _ = shared
    answer = Client().get(
        f"/registries/devdocker/images/{repo}:1.0/promote", HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200
    assert answer["HX-Redirect"].startswith("/accounts/login/?next=")


def test_a_signed_out_post_returns_to_the_page_it_came_from(shared):
    _, promotion = shared
    came_from = f"http://testserver/promotions/{promotion.pk}/"
    answer = Client().post(f"/promotions/{promotion.pk}/run-again", HTTP_REFERER=came_from)
    assert answer.status_code == 302
    assert answer["Location"] == f"/accounts/login/?next={quote(came_from, safe='/')}"
    assert Promotion.objects.get(pk=promotion.pk).status == "failed"  # nothing was done
    # A referer from another site is not followed.
    elsewhere = Client().post(
        f"/promotions/{promotion.pk}/run-again", HTTP_REFERER="https://evil.example/x"
    )
    assert elsewhere["Location"] == "/accounts/login/?next=/"


def test_anonymous_may_see_what_it_is_granted_and_is_sent_to_sign_in_for_the_rest(shared):
    repo, promotion = shared
    grant(
        "View & Download Packages", anonymous=True, registry=Registry.objects.get(name="devdocker")
    )
    visitor = Client()
    assert visitor.get("/registries/devdocker/").status_code == 200
    assert visitor.get("/promotions/").status_code == 200  # the promotion out of devdocker
    hidden = visitor.get("/registries/proddocker/")
    assert hidden.status_code == 302 and hidden["Location"].startswith("/accounts/login/")
    # Missing and hidden look the same to a signed-out visitor: both ask to sign in.
    missing = visitor.get("/registries/nosuchregistry/")
    assert missing.status_code == 302 and missing["Location"].startswith("/accounts/login/")


def test_signed_in_people_still_get_404_and_403_pages(shared):
    viewer = Client()
    viewer.force_login(user_with("View & Download Packages"))
    assert viewer.get("/registries/nosuchregistry/").status_code == 404
    assert viewer.get("/administration/").status_code == 403


def test_the_api_answers_signed_out_callers_itself(shared):
    answer = Client().get("/api/management/feeds/list")
    assert answer.status_code in {401, 403}
    assert answer["Content-Type"].startswith("application/json")


@pytest.mark.browser
def test_a_shared_tag_link_opens_after_signing_in(shared, demo, page):
    repo, _ = shared
    link = f"{demo.url}/registries/devdocker/images/{repo}:1.0?tab=history"
    page.goto(link)
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    screenshot(page, "sign-in-from-shared-link")
    login_page = page.url
    page.get_by_label("User name").fill("Admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(link)
    assert page.locator("#history").is_visible()
    assert "next=" in login_page
    # And Administration the same way, for a fresh visitor.
    page.context.clear_cookies()
    page.goto(f"{demo.url}/administration/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/administration/$"))
    page.get_by_label("User name").fill("Admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{demo.url}/administration/")
    assert page.get_by_role("heading", name="Administration").is_visible()
