"""Sign-in throttling on the login page and the docker token service."""

from __future__ import annotations

import base64

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
MAX_FAILURES = settings.PROMOTER_LOGIN_MAX_FAILURES  # PROMOTER_LOGIN_MAX_FAILURES, default 10


@pytest.fixture
def ivy():
    return get_user_model().objects.create_user("ivy", password=PASSWORD)


def sign_in(client: Client, password: str):
    return client.post("/accounts/login/", {"username": "ivy", "password": password})


def test_login_page_refuses_after_too_many_failures(ivy):
    client = Client()
    for _ in range(MAX_FAILURES):
        response = sign_in(client, "wrong")
        assert b"not correct" in response.content
    response = sign_in(client, PASSWORD)  # even the right password, for a while
    assert response.status_code == 200
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session
    other = Client(REMOTE_ADDR="10.9.8.7")  # another address is not blocked
    assert sign_in(other, PASSWORD).status_code == 302


def test_a_successful_sign_in_clears_the_count(ivy):
    client = Client()
    for _ in range(MAX_FAILURES - 1):
        sign_in(client, "wrong")
    assert sign_in(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(MAX_FAILURES - 1):
        sign_in(client, "wrong")
    assert sign_in(client, PASSWORD).status_code == 302


def test_token_service_refuses_after_too_many_failures(ivy):
    client = Client()

    def token(password):
        auth = "Basic " + base64.b64encode(f"ivy:{password}".encode()).decode()
        return client.get(
            "/auth/token", {"service": "promoter-registry"}, headers={"Authorization": auth}
        )

    for _ in range(MAX_FAILURES):
        assert token("wrong").status_code == 401
    refused = token(PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed" in refused.json()["errors"][0]["message"]
