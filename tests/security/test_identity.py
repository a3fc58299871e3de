"""Issue 11, item 2 and the token service: identities that cannot collide, names that
cannot escape their registry."""

from __future__ import annotations

import base64

import jwt
import pytest
import requests
from django.conf import settings

from accounts.permissions import SYSTEM_SUBJECT, Principal, validate_username
from accounts.tokens import system_token_provider
from promoter.errors import Invalid
from registries.models import HistoryEvent, Tag
from tests.conftest import PASSWORD, user_with, wait_for
from tests.support.images import push_image


def token(portal, *scopes: str, creds: str) -> dict:
    auth = "Basic " + base64.b64encode(creds.encode()).decode()
    params = [("service", settings.PROMOTER_TOKEN_SERVICE), *(("scope", s) for s in scopes)]
    answer = requests.get(
        f"{portal.url}/auth/token", params=params, headers={"Authorization": auth}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return jwt.decode(answer.json()["token"], options={"verify_signature": False})


def test_a_user_named_promoter_pushes_with_a_trace(demo, unique_repo, tmp_path):
    """Before: the subject `promoter` meant the portal, so this push left no tag, no History."""
    user = user_with("Publish Packages", registry="devdocker", username="promoter")
    user_with("View & Download Packages", registry="devdocker", username="promoter")
    claims = token(
        demo, f"repository:devdocker/{unique_repo}:push,pull", creds=f"promoter:{PASSWORD}"
    )
    assert claims["sub"] == f"user:{user.pk}" != SYSTEM_SUBJECT

    info = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        creds=f"promoter:{PASSWORD}",
        tmp_path=tmp_path,
    )

    assert wait_for(
        lambda: Tag.objects.filter(repository__name=unique_repo, name="1.0").exists(), timeout=10
    )
    event = HistoryEvent.objects.get(repository=unique_repo, action="pushed")
    assert (event.actor, event.user_id, event.digest) == ("promoter", user.pk, info.digest)


def test_subjects_are_typed_and_keyed_by_primary_key(demo):
    claims = jwt.decode(system_token_provider([]), options={"verify_signature": False})
    assert claims["sub"] == SYSTEM_SUBJECT
    user = user_with(username="system")  # even a name like that maps to the person
    assert Principal(user=user).token_subject == f"user:{user.pk}"
    assert Principal.from_token_subject(f"user:{user.pk}").user == user
    assert Principal.from_token_subject(SYSTEM_SUBJECT).system
    for foreign in ("promoter", "system", "user:", "user:x", "apikey:99999999", "root:1"):
        found = Principal.from_token_subject(foreign)
        assert not (isinstance(found, Principal) and found.system), foreign


@pytest.mark.parametrize("name", ["promoter", "Promoter", "system", "api", " API ", "sync"])
def test_reserved_user_names_are_refused(name):
    with pytest.raises(Invalid, match="reserved"):
        validate_username(name)


def test_ordinary_user_names_are_fine():
    assert validate_username("alice") == "alice"


def test_the_token_service_grants_nothing_for_names_that_climb_out(demo):
    user_with("Publish Packages", registry="devdocker", username="dev")
    user_with("View & Download Packages", username="dev")
    escaping = [
        "repository:devdocker/../proddocker/team/app:push,pull",
        "repository:devdocker/./team/app:push",
        "repository:devdocker//team/app:push",
        "repository:devdocker/team/app/..:push",
        "repository:DEVDOCKER/team/app:push",
    ]
    claims = token(demo, *escaping, creds=f"dev:{PASSWORD}")
    assert claims["access"] == []
    fine = token(demo, "repository:devdocker/team/app:push,pull", creds=f"dev:{PASSWORD}")
    assert fine["access"] == [
        {"type": "repository", "name": "devdocker/team/app", "actions": ["push", "pull"]}
    ]
