"""Principal decisions: the one place that says who may do what."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.auth.keys import LAST_USED_PRECISION, api_key_authenticate
from accounts.docker_token import access_for
from accounts.models import ApiArea, ApiKey, Permission
from accounts.permissions import Principal
from accounts.services import api_key_revoke
from promoter.errors import Invalid
from registries.models import Registry
from tests.support.accounts import expire, grant, make_key, pipeline

pytestmark = pytest.mark.django_db

VIEW, PUBLISH, PROMOTE, DELETE = (
    Permission.VIEW,
    Permission.PUBLISH,
    Permission.PROMOTE,
    Permission.DELETE,
)


@pytest.fixture
def regs():
    return pipeline()


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", password="x" * 12)


def test_grant_on_one_registry_applies_there_only(regs, alice):
    grant("Publish Packages", user=alice, registry=regs["devdocker"])
    me = Principal(user=alice)
    assert me.has(PUBLISH, regs["devdocker"]) and me.has(VIEW, regs["devdocker"])
    assert not me.has(VIEW, regs["rcdocker"])
    assert me.can_push(regs["devdocker"])
    assert list(Registry.objects.restrict(me, VIEW)) == [regs["devdocker"]]


def test_grant_on_all_registries_applies_everywhere(regs, alice):
    grant("View & Download Packages", user=alice)
    me = Principal(user=alice)
    assert all(me.has(VIEW, r) for r in regs.values())
    assert not me.has(PUBLISH, regs["devdocker"])


def test_group_privileges_apply_to_members_only(regs, alice):
    team = Group.objects.create(name="team")
    grant("Promote Packages", group=team, registry=regs["rcdocker"])
    assert not Principal(user=alice).has(PROMOTE, regs["rcdocker"])
    alice.groups.add(team)
    assert Principal(user=alice).has(PROMOTE, regs["rcdocker"])


def test_anonymous_privilege_applies_to_everyone(regs, alice):
    grant("View & Download Packages", anonymous=True, registry=regs["proddocker"])
    assert Principal.anonymous().has(VIEW, regs["proddocker"])
    assert not Principal.anonymous().has(VIEW, regs["devdocker"])
    assert Principal(user=alice).has(VIEW, regs["proddocker"])


def test_restrict_beats_grant_on_the_same_and_wider_scope(regs, alice):
    grant("Publish Packages", user=alice)
    grant("Publish Packages", user=alice, registry=regs["devdocker"], restrict=True)
    me = Principal(user=alice)
    assert not me.has(PUBLISH, regs["devdocker"])
    assert not me.has(VIEW, regs["devdocker"])  # Publish Packages bundles View too
    assert me.has(PUBLISH, regs["rcdocker"])


def test_restrict_on_a_group_beats_a_personal_grant(regs, alice):
    contractors = Group.objects.create(name="contractors")
    alice.groups.add(contractors)
    grant("Delete Packages", user=alice)
    grant("Delete Packages", group=contractors, registry=regs["proddocker"], restrict=True)
    me = Principal(user=alice)
    assert me.has(DELETE, regs["devdocker"]) and not me.has(DELETE, regs["proddocker"])


def test_administer_allows_everything_but_pushing_into_validated(regs, alice):
    grant("Administer", user=alice)
    me = Principal(user=alice)
    assert me.is_administrator()
    assert me.has(DELETE, regs["proddocker"]) and me.has(PROMOTE, regs["proddocker"])
    assert me.can_push(regs["devdocker"])
    assert not me.can_push(regs["rcdocker"]) and not me.can_push(regs["proddocker"])


def test_validated_push_is_denied_to_the_superuser_admin(regs):
    admin = get_user_model().objects.create_superuser("Admin", password="x" * 12)
    me = Principal(user=admin)
    assert me.is_administrator() and me.can_push(regs["devdocker"])
    assert not me.can_push(regs["proddocker"])
    assert Principal.promoter().can_push(regs["proddocker"])


def test_promoting_needs_promote_on_target_and_view_on_source(regs, alice):
    grant("Promote Packages", user=alice, registry=regs["rcdocker"])
    me = Principal(user=alice)
    assert not me.can_promote(regs["devdocker"], regs["rcdocker"])  # no View on devdocker
    grant("View & Download Packages", user=alice, registry=regs["devdocker"])
    assert Principal(user=alice).can_promote(regs["devdocker"], regs["rcdocker"])
    assert not Principal(user=alice).can_promote(regs["rcdocker"], regs["proddocker"])


def test_inactive_users_may_do_nothing(regs, alice):
    grant("Administer", user=alice)
    alice.is_active = False
    alice.save()
    assert not Principal(user=alice).has(VIEW, regs["devdocker"])


def test_feed_key_holds_exactly_its_registries_and_permissions(regs):
    key, _ = make_key(ApiKey.Kind.FEED, registries=[regs["devdocker"]], permissions=[VIEW, PUBLISH])
    ci = Principal(api_key=key)
    assert ci.has(VIEW, regs["devdocker"]) and ci.can_push(regs["devdocker"])
    assert not ci.has(DELETE, regs["devdocker"])
    assert not ci.has(VIEW, regs["rcdocker"])
    assert not ci.is_administrator()
    assert ci.name == f"API key {key.name}"
    assert ci.token_subject == f"apikey:{key.pk}"


def test_feed_key_with_publish_on_validated_registry_still_cannot_push(regs):
    key, _ = make_key(
        ApiKey.Kind.FEED, registries=[regs["proddocker"]], permissions=[VIEW, PUBLISH, PROMOTE]
    )
    assert not Principal(api_key=key).can_push(regs["proddocker"])
    assert Principal(api_key=key).has(PROMOTE, regs["proddocker"])


def test_system_key_has_full_control_except_validated_push(regs):
    key, _ = make_key(ApiKey.Kind.SYSTEM)
    root = Principal(api_key=key)
    assert root.is_administrator() and root.has(DELETE, regs["proddocker"])
    assert not root.can_push(regs["proddocker"])


def test_personal_key_acts_as_its_user(regs, alice):
    grant("Publish Packages", user=alice, registry=regs["devdocker"])
    key, raw = make_key(ApiKey.Kind.PERSONAL, user=alice)
    found = api_key_authenticate(raw)
    assert found == key and found.user == alice
    me = Principal(user=found.user, api_key=found)
    assert me.can_push(regs["devdocker"]) and not me.has(VIEW, regs["rcdocker"])
    assert me.name == f"API key {key.name}"


def test_expired_and_revoked_keys_are_refused(regs, alice):
    expired, raw_expired = make_key(ApiKey.Kind.SYSTEM)
    revoked, raw_revoked = make_key(ApiKey.Kind.SYSTEM)
    live, raw_live = make_key(ApiKey.Kind.SYSTEM)
    expire(expired)
    api_key_revoke(api_key=revoked, actor=Principal.promoter())
    assert api_key_authenticate(raw_expired) is None
    assert api_key_authenticate(raw_revoked) is None
    assert api_key_authenticate(raw_live) == live
    assert api_key_authenticate(raw_live[:-1] + ("A" if raw_live[-1] != "A" else "B")) is None
    live.refresh_from_db()
    assert live.last_used_at is not None


def test_a_keys_last_use_is_recorded_to_the_minute_without_a_write_per_call(
    regs, django_assert_num_queries
):
    key, raw = make_key(ApiKey.Kind.SYSTEM)
    assert api_key_authenticate(raw) == key
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None

    with django_assert_num_queries(1):  # the lookup; no UPDATE within the minute
        assert api_key_authenticate(raw) == key
    key.refresh_from_db()
    assert key.last_used_at == first

    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - LAST_USED_PRECISION)
    assert api_key_authenticate(raw) == key
    key.refresh_from_db()
    assert key.last_used_at > first


def test_keys_of_deactivated_users_are_refused(regs, alice):
    _, raw = make_key(ApiKey.Kind.PERSONAL, user=alice)
    alice.is_active = False
    alice.save()
    assert api_key_authenticate(raw) is None


def test_keys_are_stored_only_as_a_hash(regs):
    key, raw = make_key(ApiKey.Kind.SYSTEM)
    key.refresh_from_db()
    stored = " ".join(str(v) for v in key.__dict__.values())
    assert raw not in stored
    assert key.key_prefix == raw[:8]


def test_system_key_limited_to_areas_has_full_control_only_in_them(regs):
    key, _ = make_key(ApiKey.Kind.SYSTEM, areas=[ApiArea.PROMOTIONS])
    limited = Principal(api_key=key)

    assert key.areas == ["promotions"] and key.feed_permissions == []
    assert limited.api_area_allowed(ApiArea.PROMOTIONS)
    assert not limited.api_area_allowed(ApiArea.FEEDS)
    assert not limited.api_area_allowed(ApiArea.API_KEYS)
    assert not limited.api_area_allowed(None)
    promoting = limited.in_api_area(ApiArea.PROMOTIONS)
    assert promoting.can_promote(regs["devdocker"], regs["rcdocker"])
    assert promoting.is_administrator() and promoting.has(DELETE, regs["proddocker"])
    assert not promoting.can_push(regs["proddocker"])
    # Outside its areas (other API areas, pages, the token service) it holds nothing.
    for elsewhere in (limited, limited.in_api_area(ApiArea.FEEDS)):
        assert not elsewhere.is_administrator()
        assert not elsewhere.has(VIEW, regs["devdocker"])
        assert not elsewhere.can_push(regs["devdocker"])
        assert list(Registry.objects.restrict(elsewhere, VIEW)) == []


def test_full_control_system_key_is_allowed_in_every_area_and_outside_the_api(regs):
    key, _ = make_key(ApiKey.Kind.SYSTEM)
    root = Principal(api_key=key)
    assert key.areas == []
    assert all(root.api_area_allowed(area) for area in [*ApiArea.values, None])
    assert root.is_administrator() and root.in_api_area(ApiArea.FEEDS).is_administrator()


def test_areas_never_limit_people_or_other_keys(regs, alice):
    grant("View & Download Packages", user=alice, registry=regs["devdocker"])
    feed_key, _ = make_key(ApiKey.Kind.FEED, registries=[regs["devdocker"]], permissions=[VIEW])
    for principal in (Principal(user=alice), Principal(api_key=feed_key), Principal.anonymous()):
        assert all(principal.api_area_allowed(area) for area in [*ApiArea.values, None])
    assert Principal(user=alice).in_api_area(ApiArea.FEEDS).has(VIEW, regs["devdocker"])


def test_token_service_grants_a_limited_system_key_nothing(regs):
    limited, _ = make_key(ApiKey.Kind.SYSTEM, areas=[ApiArea.PROMOTIONS, ApiArea.FEEDS])
    full, _ = make_key(ApiKey.Kind.SYSTEM)
    scopes = ["repository:devdocker/team/api:pull,push registry:catalog:*"]

    assert access_for(Principal(api_key=limited), scopes) == []
    assert access_for(Principal(api_key=full), scopes) == [
        {"type": "repository", "name": "devdocker/team/api", "actions": ["pull", "push"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]


def test_api_key_create_keeps_areas_in_a_stable_order(regs):
    key, _ = make_key(ApiKey.Kind.SYSTEM, areas=["api-keys", "promotions", "promotions"])
    key.refresh_from_db()
    assert key.permissions == ["promotions", "api-keys"] == key.areas


@pytest.mark.parametrize(
    ("kind", "areas", "message"),
    [
        (
            ApiKey.Kind.SYSTEM,
            ["promotions", "admin"],
            "Unknown API area: admin; choose from promotions, feeds, api-keys",
        ),
        (ApiKey.Kind.FEED, ["promotions"], "Only system keys are limited to API areas"),
        (ApiKey.Kind.PERSONAL, ["feeds"], "Only system keys are limited to API areas"),
    ],
)
def test_api_key_create_refuses_bad_areas(regs, alice, kind, areas, message):
    with pytest.raises(Invalid, match=re.escape(message)):
        make_key(kind, user=alice, registries=[regs["devdocker"]], permissions=[VIEW], areas=areas)
    assert not ApiKey.objects.exists()
