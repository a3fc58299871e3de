"""Small things people read: one date format, the words, this instance's address in the API docs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client, override_settings

from promoter.templatetags.dates import when

pytestmark = pytest.mark.django_db


def test_dates_are_absolute_with_the_time_zone_and_relative_on_hover():
    moment = dt.datetime(2025, 6, 1, 14, 3, 27, tzinfo=dt.UTC)
    html = when(moment)
    assert html.startswith('<time datetime="2025-06-01T14:03:27+00:00" title="')
    assert ">2025-06-01 14:03 UTC</time>" in html
    assert "ago" in html  # the relative time, in the title
    with override_settings(TIME_ZONE="Europe/Berlin"):
        assert ">2025-06-01 16:03 CEST</time>" in when(moment)
    assert when(None) == ""


def test_sign_in_says_user_name():
    html = Client().get("/accounts/login/").content.decode()
    assert "User name" in html and "Username" not in html


def test_a_validated_registry_shows_no_push_hint(demo, admin_client_page):
    prod = admin_client_page.get("/registries/proddocker/").content.decode()
    dev = admin_client_page.get("/registries/devdocker/").content.decode()
    assert "Push to" not in prod and "Pull from" in prod
    assert "Push to" in dev
    assert "Promote To Feed" in dev and "Manage Feed" in dev


def test_api_docs_examples_use_this_instances_address(demo):
    html = Client().get("/api/docs").content.decode()
    assert "curl -X POST http://testserver/api/promotions/promote" in html
    assert "promoter.example.com" not in html


@pytest.fixture
def admin_client_page(demo):
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="Admin"))
    return client
