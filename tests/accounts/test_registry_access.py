"""End to end: real skopeo against the real registry, whose token auth asks the live portal."""

from __future__ import annotations

import base64
import subprocess
import uuid

import jwt
import pytest
import requests
from cryptography import x509
from django.conf import settings
from django.contrib.auth import get_user_model

from accounts.models import ApiKey, Permission
from accounts.permissions import Principal
from accounts.services import api_key_revoke
from accounts.tokens import libtrust_kid
from registries.models import HistoryEvent, Registry
from tests.support.accounts import PASSWORD, expire, grant, make_key, user_with
from tests.support.wait import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

DENIED = ("denied", "unauthorized")


def skopeo(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=timeout)


def copy(portal, src: str, dst: str, *, src_creds: str | None, dest_creds: str | None):
    """skopeo copy between two references of the bundled registry."""
    args = ["copy", "--src-tls-verify=false", "--dest-tls-verify=false"]
    args += ["--src-creds", src_creds] if src_creds else ["--src-no-creds"]
    args += ["--dest-creds", dest_creds] if dest_creds else ["--dest-no-creds"]
    return skopeo(*args, f"docker://{portal.hostport}/{src}", f"docker://{portal.hostport}/{dst}")


def inspect(portal, ref: str, creds: str | None):
    args = ["inspect", "--raw", "--tls-verify=false"]
    args += ["--creds", creds] if creds else ["--no-creds"]
    return skopeo(*args, f"docker://{portal.hostport}/{ref}")


def login(portal, user: str, secret: str, tmp_path):
    return skopeo(
        "login",
        "--tls-verify=false",
        "--authfile",
        str(tmp_path / "auth.json"),
        "-u",
        user,
        "-p",
        secret,
        portal.hostport,
    )


def assert_denied(result: subprocess.CompletedProcess) -> None:
    assert result.returncode != 0, result.stdout
    assert any(word in result.stderr.lower() for word in DENIED), result.stderr


def token(portal, *scopes: str, creds: str | None = None) -> requests.Response:
    headers = {}
    if creds:
        headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
    params = [("service", settings.PROMOTER_TOKEN_SERVICE), *(("scope", s) for s in scopes)]
    return requests.get(f"{portal.url}/auth/token", params=params, headers=headers, timeout=30)


def other_repo() -> str:
    return f"team/copy-{uuid.uuid4().hex[:10]}"


def test_skopeo_login_with_password_and_with_api_key(demo, tmp_path):
    user = user_with("View & Download Packages", registry="devdocker")
    assert login(demo, user.username, PASSWORD, tmp_path).returncode == 0
    assert_denied_login = login(demo, user.username, "wrong password", tmp_path)
    assert assert_denied_login.returncode != 0
    _, raw = make_key(ApiKey.Kind.PERSONAL, user=user)
    result = login(demo, "api", raw, tmp_path)
    assert result.returncode == 0, result.stderr


def test_user_with_publish_pushes_to_devdocker_only(demo, pushed):
    repo, info = pushed
    publisher = user_with("Publish Packages", registry="devdocker")
    creds = f"{publisher.username}:{PASSWORD}"
    target = other_repo()
    ok = copy(
        demo, f"devdocker/{repo}:1.0", f"devdocker/{target}:1.0", src_creds=creds, dest_creds=creds
    )
    assert ok.returncode == 0, ok.stderr
    assert info.digest in inspect_digest(demo, f"devdocker/{target}:1.0", creds)

    viewer = user_with("View & Download Packages", registry="devdocker")
    vcreds = f"{viewer.username}:{PASSWORD}"
    assert_denied(
        copy(
            demo,
            f"devdocker/{repo}:1.0",
            f"devdocker/{other_repo()}:1.0",
            src_creds=vcreds,
            dest_creds=vcreds,
        )
    )


def inspect_digest(portal, ref: str, creds: str) -> str:
    result = skopeo(
        "inspect",
        "--tls-verify=false",
        "--creds",
        creds,
        "--format",
        "{{.Digest}}",
        f"docker://{portal.hostport}/{ref}",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_push_to_proddocker_is_denied_even_for_admin(demo, pushed, admin_creds):
    repo, _ = pushed
    for target in ("proddocker", "rcdocker"):
        assert_denied(
            copy(
                demo,
                f"devdocker/{repo}:1.0",
                f"{target}/{repo}:1.0",
                src_creds=admin_creds,
                dest_creds=admin_creds,
            )
        )
    ci, raw = make_key(ApiKey.Kind.SYSTEM, name="root")
    assert_denied(
        copy(
            demo,
            f"devdocker/{repo}:1.0",
            f"proddocker/{repo}:1.0",
            src_creds=admin_creds,
            dest_creds=f"api:{raw}",
        )
    )


def test_feed_key_pushes_where_allowed_and_history_names_it(demo, pushed, admin_creds):
    repo, info = pushed
    dev = Registry.objects.get(name="devdocker")
    _, raw = make_key(
        ApiKey.Kind.FEED,
        name="ci",
        registries=[dev],
        permissions=[Permission.VIEW, Permission.PUBLISH],
    )
    target = other_repo()
    ok = copy(
        demo,
        f"devdocker/{repo}:1.0",
        f"devdocker/{target}:2.0",
        src_creds=f"api:{raw}",
        dest_creds=f"api:{raw}",
    )
    assert ok.returncode == 0, ok.stderr
    event = wait_for(
        lambda: HistoryEvent.objects.filter(
            action=HistoryEvent.Action.PUSHED, registry="devdocker", repository=target, tag="2.0"
        ).first(),
        timeout=30,
    )
    assert event is not None and event.actor == "API key ci"
    assert event.digest == info.digest
    # The key has nothing on rcdocker: not even a pull there.
    assert_denied(inspect(demo, f"rcdocker/{repo}:1.0", f"api:{raw}"))


def test_personal_key_pushes_as_its_user(demo, pushed):
    repo, _ = pushed
    publisher = user_with("Publish Packages", registry="devdocker")
    _, raw = make_key(ApiKey.Kind.PERSONAL, user=publisher, name="laptop")
    target = other_repo()
    ok = copy(
        demo,
        f"devdocker/{repo}:1.0",
        f"devdocker/{target}:1.0",
        src_creds=f"api:{raw}",
        dest_creds=f"api:{raw}",
    )
    assert ok.returncode == 0, ok.stderr
    event = wait_for(lambda: HistoryEvent.objects.filter(repository=target).first(), timeout=30)
    assert event.actor == "API key laptop"
    # The same key cannot do what its user cannot.
    outsider = user_with(None)
    _, raw2 = make_key(ApiKey.Kind.PERSONAL, user=outsider)
    assert_denied(
        copy(
            demo,
            f"devdocker/{repo}:1.0",
            f"devdocker/{other_repo()}:1.0",
            src_creds=f"api:{raw}",
            dest_creds=f"api:{raw2}",
        )
    )


def test_anonymous_pull_works_only_where_anonymous_holds_view(demo, pushed):
    repo, info = pushed
    assert_denied(inspect(demo, f"devdocker/{repo}:1.0", None))
    grant(
        "View & Download Packages", anonymous=True, registry=Registry.objects.get(name="devdocker")
    )
    ok = inspect(demo, f"devdocker/{repo}:1.0", None)
    assert ok.returncode == 0, ok.stderr
    assert_denied(inspect(demo, f"rcdocker/{repo}:1.0", None))
    # Anonymous may pull but never push.
    assert_denied(
        copy(
            demo,
            f"devdocker/{repo}:1.0",
            f"devdocker/{other_repo()}:1.0",
            src_creds=None,
            dest_creds=None,
        )
    )


def test_expired_and_revoked_keys_are_refused(demo, pushed):
    repo, _ = pushed
    dev = Registry.objects.get(name="devdocker")
    expired, raw_expired = make_key(
        ApiKey.Kind.FEED, registries=[dev], permissions=[Permission.VIEW, Permission.PUBLISH]
    )
    revoked, raw_revoked = make_key(
        ApiKey.Kind.FEED, registries=[dev], permissions=[Permission.VIEW, Permission.PUBLISH]
    )
    scope = f"repository:devdocker/{repo}:pull"
    assert token(demo, scope, creds=f"api:{raw_expired}").status_code == 200
    expire(expired)
    api_key_revoke(api_key=revoked, actor=Principal.promoter())
    for raw in (raw_expired, raw_revoked):
        refused = token(demo, scope, creds=f"api:{raw}")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
        result = copy(
            demo,
            f"devdocker/{repo}:1.0",
            f"devdocker/{other_repo()}:1.0",
            src_creds=f"api:{raw}",
            dest_creds=f"api:{raw}",
        )
        assert result.returncode != 0
        assert "401" in result.stderr or "unauthorized" in result.stderr.lower(), result.stderr


def test_token_is_a_jwt_distribution_accepts(demo):
    user = user_with("Publish Packages", registry="devdocker")
    answer = token(
        demo,
        "repository:devdocker/team/api:pull,push,delete",
        "repository:proddocker/team/api:pull,push",
        "registry:catalog:*",
        creds=f"{user.username}:{PASSWORD}",
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"] and isinstance(body["expires_in"], int)
    cert = x509.load_pem_x509_certificate(settings.PROMOTER_TOKEN_CERT.read_bytes())
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "RS256"
    assert header["kid"] == libtrust_kid(cert.public_key())
    claims = jwt.decode(
        body["token"],
        cert.public_key(),
        algorithms=["RS256"],
        audience=settings.PROMOTER_TOKEN_SERVICE,
        issuer=settings.PROMOTER_TOKEN_ISSUER,
    )
    assert isinstance(claims["aud"], str)
    assert all(isinstance(claims[k], int) for k in ("exp", "nbf", "iat"))
    assert claims["sub"] == user.username
    # The intersection: push and pull on devdocker, nothing on proddocker or the catalog.
    assert claims["access"] == [
        {"type": "repository", "name": "devdocker/team/api", "actions": ["pull", "push"]}
    ]


def test_token_for_keys_names_the_key_and_admin_gets_the_catalog(demo, admin_creds):
    key, raw = make_key(
        ApiKey.Kind.FEED,
        registries=[Registry.objects.get(name="devdocker")],
        permissions=[Permission.VIEW],
    )
    claims = jwt.decode(
        token(demo, "repository:devdocker/x:pull,push", creds=f"api:{raw}").json()["token"],
        options={"verify_signature": False},
    )
    assert claims["sub"] == f"apikey:{key.pk}"
    assert claims["access"] == [{"type": "repository", "name": "devdocker/x", "actions": ["pull"]}]
    claims = jwt.decode(
        token(demo, "registry:catalog:*", creds=admin_creds).json()["token"],
        options={"verify_signature": False},
    )
    assert claims["access"] == [{"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert claims["sub"] == get_user_model().objects.get(username="Admin").username


def test_system_key_limited_to_api_areas_is_denied_by_the_registry(demo, pushed):
    repo, _ = pushed
    _, limited = make_key(ApiKey.Kind.SYSTEM, areas=["promotions", "feeds", "api-keys"])
    _, full = make_key(ApiKey.Kind.SYSTEM)
    scope = f"repository:devdocker/{repo}:pull,push"

    claims = jwt.decode(
        token(demo, scope, "registry:catalog:*", creds=f"api:{limited}").json()["token"],
        options={"verify_signature": False},
    )
    assert claims["access"] == []
    assert_denied(inspect(demo, f"devdocker/{repo}:1.0", creds=f"api:{limited}"))
    assert inspect(demo, f"devdocker/{repo}:1.0", creds=f"api:{full}").returncode == 0
