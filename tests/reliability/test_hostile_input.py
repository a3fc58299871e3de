"""Hostile input: parsers never crash, tokens that were tampered with are refused."""

from __future__ import annotations

import json
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.docker_token import access_for
from accounts.permissions import Principal
from accounts.tokens import libtrust_kid, mint_token, parse_scope
from registries.oci.auth import parse_challenges
from registries.oci.errors import RegistryError, error_from_response

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)


@given(TEXT)
def test_scope_parser_returns_a_scope_or_none(raw):
    scope = parse_scope(raw)
    if scope is not None:
        assert set(scope) == {"type", "name", "actions"}
        assert scope["type"] and scope["name"]
        assert all(isinstance(a, str) and a for a in scope["actions"])


@given(TEXT)
def test_challenge_parser_never_crashes(header):
    for challenge in parse_challenges(header):
        assert isinstance(challenge.params, dict)


@given(
    st.integers(min_value=400, max_value=599),
    st.one_of(
        TEXT.map(str.encode),
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | TEXT,
            lambda kids: st.lists(kids, max_size=4) | st.dictionaries(TEXT, kids, max_size=4),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_any_error_response_becomes_a_typed_error(status, body):
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = "application/json"
    error = error_from_response(response, action="get manifest team/api:1.0")
    assert isinstance(error, RegistryError)
    assert error.message


@pytest.mark.django_db
@settings(
    max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(st.lists(TEXT, max_size=5))
def test_token_scopes_never_crash_and_never_grant_push_into_validated(scopes):
    from registries.models import Registry

    Registry.objects.get_or_create(name="proddocker", usage_type=Registry.UsageType.VALIDATED)
    admin = Principal(user=_superuser())
    scopes = scopes + ["repository:proddocker/team/api:pull,push,delete,*"]
    for grant in access_for(admin, scopes):
        if grant["name"].startswith("proddocker/"):
            assert "push" not in grant["actions"]


def _superuser():
    from django.contrib.auth import get_user_model

    users = get_user_model()
    return users.objects.filter(username="root").first() or users.objects.create_superuser(
        "root", password="x" * 16
    )


@pytest.mark.django_db
@settings(
    max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    st.dictionaries(
        TEXT,
        st.recursive(
            st.none() | TEXT | st.integers(),
            lambda kids: st.dictionaries(TEXT, kids, max_size=3),
            max_leaves=8,
        ),
        max_size=5,
    )
)
def test_notification_events_of_any_shape_never_crash(event):
    from registries.services.index import notification_apply

    def describe(path, ref):
        raise RegistryError("unreachable in this test")

    assert isinstance(notification_apply(event=event, describe=describe), str)


# --- tokens the registry must refuse -------------------------------------------------
def _v2(demo, token: str) -> int:
    url = f"{demo.registry.url}/v2/devdocker/team/api/tags/list"
    return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code


ACCESS = [{"type": "repository", "name": "devdocker/team/api", "actions": ["pull"]}]


@pytest.mark.django_db(transaction=True)
def test_registry_accepts_a_good_token_and_refuses_tampered_ones(demo):
    from django.conf import settings as django_settings

    good, _ = mint_token(subject="Admin", access=ACCESS)
    assert _v2(demo, good) in {200, 404}  # authorized (the repository may not exist)

    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    claims["access"][0]["actions"] = ["pull", "push"]
    forged_payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert _v2(demo, f"{header}.{forged_payload}.{signature}") == 401

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    base = {
        "iss": django_settings.PROMOTER_TOKEN_ISSUER,
        "sub": "Admin",
        "aud": django_settings.PROMOTER_TOKEN_SERVICE,
        "exp": now + 60,
        "nbf": now - 5,
        "iat": now,
        "access": ACCESS,
    }
    foreign = jwt.encode(
        base, other_key, algorithm="RS256", headers={"kid": libtrust_kid(other_key.public_key())}
    )
    assert _v2(demo, foreign) == 401

    from accounts.tokens import signing_key

    key, kid = signing_key()
    expired = jwt.encode(
        {**base, "exp": now - 120, "nbf": now - 300, "iat": now - 300},
        key,
        algorithm="RS256",
        headers={"kid": kid},
    )
    assert _v2(demo, expired) == 401
    other_service = jwt.encode(
        {**base, "aud": "someone-else"}, key, algorithm="RS256", headers={"kid": kid}
    )
    assert _v2(demo, other_service) == 401
    assert _v2(demo, "not-a-jwt") == 401
