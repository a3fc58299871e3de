"""The client's address behind a load balancer: X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory

from accounts.auth.throttle import ADDRESS_FREE
from promoter.remote import client_address

PASSWORD = "correct horse battery staple"
BALANCER = "10.0.0.5"


def _request(peer: str, forwarded: str | None = None):
    meta = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a proxy: its header is ignored
        (BALANCER, "198.51.100.1", "198.51.100.1"),
        (BALANCER, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client wrote 6.6.6.6
        (BALANCER, "198.51.100.1, 10.0.0.7", "198.51.100.1"),  # two trusted hops
        (BALANCER, "10.0.0.8, 10.0.0.7", "10.0.0.8"),  # only proxies: the farthest
        (BALANCER, "not-an-address, 198.51.100.1", "198.51.100.1"),
        (BALANCER, "198.51.100.1, junk", BALANCER),  # an unreadable hop ends the walk
        (BALANCER, "", BALANCER),
        (BALANCER, None, BALANCER),
        (BALANCER, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_address_believes_forwarded_for_only_from_trusted_proxies(
    settings, peer, forwarded, expected
):
    settings.PROMOTER_TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert client_address(_request(peer, forwarded)) == expected


def test_without_trusted_proxies_the_peer_is_the_client(settings):
    settings.PROMOTER_TRUSTED_PROXIES = []
    assert client_address(_request(BALANCER, "198.51.100.1")) == BALANCER


@pytest.mark.django_db
def test_password_spraying_from_one_client_does_not_block_another_behind_the_balancer(settings):
    """The per-address backoff counts the forwarded client, not the balancer: one client
    spraying many user names waits; a colleague behind the same balancer signs in."""
    settings.PROMOTER_TRUSTED_PROXIES = ["10.0.0.0/24"]
    get_user_model().objects.create_user("ivy", password=PASSWORD)
    attacker = Client(REMOTE_ADDR=BALANCER, HTTP_X_FORWARDED_FOR="198.51.100.66")
    colleague = Client(REMOTE_ADDR=BALANCER, HTTP_X_FORWARDED_FOR="198.51.100.7")
    for i in range(ADDRESS_FREE):
        attacker.post("/accounts/login/", {"username": f"guess{i}", "password": "wrong"})

    blocked = attacker.post("/accounts/login/", {"username": "ivy", "password": PASSWORD})
    assert b"Too many failed sign-in attempts" in blocked.content
    signed_in = colleague.post("/accounts/login/", {"username": "ivy", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/"
