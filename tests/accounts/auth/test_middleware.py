"""API authentication on every request, and CSRF kept for people with a session."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client, RequestFactory

from accounts.auth.middleware import ApiAuthenticationMiddleware
from accounts.models import ApiKey, Task
from tests.support.accounts import make_key, pipeline

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture
def regs():
    return pipeline()


def run(request):
    """Pass `request` through the middleware; returns (response, request)."""
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    seen = {}

    def view(req):
        seen["request"] = req
        return HttpResponse("ok")

    response = ApiAuthenticationMiddleware(view)(request)
    return response, seen.get("request")


@pytest.mark.parametrize("where", ["header", "query", "form", "basic"])
def test_a_key_is_accepted_in_every_documented_place(regs, where):
    key, raw = make_key(ApiKey.Kind.SYSTEM, name="everywhere")
    rf = RequestFactory()
    if where == "header":
        request = rf.get("/api/registries", headers={"X-ApiKey": raw})
    elif where == "query":
        request = rf.get("/api/registries", {"key": raw})
    elif where == "form":
        request = rf.post("/api/promotions", {"key": raw})
    else:
        request = rf.get("/api/registries", headers={"Authorization": basic("api", raw)})
    response, seen = run(request)
    assert response.status_code == 200
    assert seen.principal.api_key == key
    assert seen.principal.name == "API key everywhere"
    assert seen._dont_enforce_csrf_checks is True


def test_a_person_may_use_basic_user_and_password(regs):
    user = get_user_model().objects.create_user("gina", password=PASSWORD)
    request = RequestFactory().get(
        "/api/registries", headers={"Authorization": basic("gina", PASSWORD)}
    )
    _, seen = run(request)
    assert seen.principal.user == user and seen.user == user


def test_personal_keys_act_as_their_user(regs):
    user = get_user_model().objects.create_user("hank", password=PASSWORD)
    _, raw = make_key(ApiKey.Kind.PERSONAL, user=user)
    _, seen = run(RequestFactory().get("/", headers={"X-ApiKey": raw}))
    assert seen.principal.user == user and seen.user == user


@pytest.mark.parametrize(
    "headers",
    [
        {"X-ApiKey": "pk_nope"},
        {"Authorization": basic("api", "pk_nope")},
        {"Authorization": basic("nobody", "wrong")},
    ],
)
def test_bad_credentials_on_the_api_get_403_json(regs, headers):
    response = Client().get("/api/registries", headers=headers)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "authentication failed" in response.json()["error"]


def test_bad_credentials_on_pages_are_ignored(regs):
    response, seen = run(RequestFactory().get("/", headers={"X-ApiKey": "pk_nope"}))
    assert response.status_code == 200
    assert not hasattr(seen, "principal")


def test_feed_key_request_never_acts_as_the_session_user(regs):
    """A key sent along with a session cookie replaces the session's user for that request."""
    admin = get_user_model().objects.create_superuser("Admin", password=PASSWORD)
    _, raw = make_key(ApiKey.Kind.FEED, registries=[regs["devdocker"]], permissions=["view"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post(
        "/administration/tasks", {"name": "Sneaky", "permissions": ["view"], "key": raw}
    )
    assert response.status_code == 403
    assert not Task.objects.filter(name="Sneaky").exists()


def test_csrf_is_enforced_for_session_users(regs):
    admin = get_user_model().objects.create_superuser("Admin", password=PASSWORD)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post("/administration/tasks", {"name": "NoToken", "permissions": ["view"]})
    assert response.status_code == 403
    assert not Task.objects.filter(name="NoToken").exists()


def test_key_authenticated_requests_are_exempt_from_csrf(regs):
    _, raw = make_key(ApiKey.Kind.SYSTEM)
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/administration/tasks",
        {"name": "ByKey", "permissions": ["view"]},
        headers={"X-ApiKey": raw},
    )
    assert response.status_code == 302
    assert Task.objects.filter(name="ByKey").exists()


@pytest.mark.parametrize("header", ["Basic !!!not-base64", "Basic " + "bm8tY29sb24="])
def test_a_malformed_basic_header_is_refused_even_beside_a_valid_key(regs, header):
    key, raw = make_key(ApiKey.Kind.SYSTEM, name="two-credentials")
    request = RequestFactory().get(
        "/api/promotions/list", headers={"X-ApiKey": raw, "Authorization": header}
    )
    response, _ = run(request)
    assert response.status_code == 403
    assert b"malformed Basic credentials" in response.content


def test_a_well_formed_basic_header_beside_a_key_leaves_the_key_in_charge(regs):
    key, raw = make_key(ApiKey.Kind.SYSTEM, name="key-wins")
    request = RequestFactory().get(
        "/api/promotions/list",
        headers={"X-ApiKey": raw, "Authorization": basic("nobody", "wrong")},
    )
    response, seen = run(request)
    assert response.status_code == 200
    assert seen.principal.api_key == key
