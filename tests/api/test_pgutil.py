"""ProGet's own client, pgutil (Inedo/pgutil), is the contract: each test replays the requests
its source sends, byte for byte where it matters, and checks the effect a user would see.

What pgutil puts on the wire (Inedo.ProGet/ProGetClient.cs and ProGetApiJsonContext.cs):
- JSON through .NET's PostAsJsonAsync: `Content-Type: application/json; charset=utf-8`,
  `Transfer-Encoding: chunked` and no Content-Length; camelCase properties, null ones left
  out (WhenWritingNull), enum values as their C# names (`System`, `None`).
- `X-ApiKey: <key>`, or `X-ApiKey: user:password` for --username/--password (the
  ProGetClient(url, username, password) constructor).
- PostAsync(url, null): a POST with `Content-Length: 0`; DeleteAsync and GetAsync: no body.

Django's development server (the live_server of the other API tests) cannot read a chunked
body, so pgutil's requests go to gunicorn, started here on the test database the way
`make run` starts it; the development server's refusal (411) is tested too.
"""

from __future__ import annotations

import hashlib
import http.client
import json
from urllib.parse import urlsplit

import pytest
import requests

from accounts.models import ApiKey
from registries.models import HistoryEvent, Registry
from tests.api.conftest import make_key
from tests.conftest import PASSWORD, user_with
from tests.support.images import skopeo_inspect_raw
from tests.support.runner import Gunicorn

pytestmark = pytest.mark.django_db(transaction=True)


class Pgutil:
    """The HTTP requests of pgutil's ProGetClient, made with http.client (real chunking)."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        # ProGetClient(url, username, password) : this(url, $"{username}:{password}")
        self.api_key = api_key if api_key is not None else f"{user}:{password}"

    def send(
        self, method: str, path: str, body: dict | None = None, *, null_content: bool = False
    ) -> tuple[int, dict, bytes]:
        """One request; `body` as PostAsJsonAsync sends it, `null_content` as PostAsync(url,
        null) does. Returns (status, headers, body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.putrequest(method, "/" + path, skip_accept_encoding=True)
            conn.putheader("X-ApiKey", self.api_key)
            if body is not None:
                payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
                conn.putheader("Content-Type", "application/json; charset=utf-8")
                conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                # Two chunks, so the server must join them; then the last, empty chunk.
                middle = len(payload) // 2
                for piece in (payload[:middle], payload[middle:]):
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                conn.send(b"0\r\n\r\n")
            else:
                if null_content:
                    conn.putheader("Content-Length", "0")
                conn.endheaders()
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def json(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        *,
        expect: int = 200,
        null_content: bool = False,
    ):
        status, _, data = self.send(method, path, body, null_content=null_content)
        assert status == expect, (method, path, status, data[:500])
        return json.loads(data) if data else None


@pytest.fixture(scope="module")
def gunicorn(portal, django_db_setup, tmp_path_factory):
    """Promoter under gunicorn (as `make run` and the image run it), on the test database."""
    server = Gunicorn(
        tmp_path_factory.mktemp("gunicorn"),
        PROMOTER_TASKS_BACKEND="django.tasks.backends.immediate.ImmediateBackend",
    )
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pgutil(gunicorn, demo) -> Pgutil:
    """pgutil with a system key (`pgutil --api-key=…`)."""
    return Pgutil(gunicorn, api_key=make_key("system", name="pgutil"))


def person_with_password(task: str, username: str):
    """A user whose password gunicorn can check (the tests' MD5 hashing is in-process only)."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user = user_with(task, username=username)
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "pgutilsalt", iterations=1000)
    user.save(update_fields=["password"])
    return user


def manifest_at(demo, registry: str, repo: str) -> bytes:
    return skopeo_inspect_raw(
        f"docker://{demo.hostport}/{registry}/{repo}:1.0", creds=f"Admin:{PASSWORD}"
    )


# --- promote ---------------------------------------------------------------------------
def test_promote_as_pgutil_sends_it_copies_the_exact_digest(pgutil, demo, pushed):
    repo, info = pushed
    group, _, name = repo.rpartition("/")

    # Inedo.ProGet/ProGetClient.cs PromotePackageAsync → PostAsync("api/promotions/promote",
    # PromotePackageInput) (Inedo.ProGet/PromotePackageInput.cs: FromFeed, Group, Name,
    # Version, ToFeed, Comments).
    status, _, body = pgutil.send(
        "POST",
        "api/promotions/promote",
        {
            "fromFeed": "devdocker",
            "group": group,
            "name": name,
            "version": "1.0",
            "toFeed": "rcdocker",
            "comments": "Approved for production use ✓",
        },
    )

    assert status == 200, body
    target = manifest_at(demo, "rcdocker", repo)
    assert "sha256:" + hashlib.sha256(target).hexdigest() == info.digest
    assert target == manifest_at(demo, "devdocker", repo)
    event = HistoryEvent.objects.get(action="promoted", repository=repo)
    assert (event.from_registry, event.to_registry, event.digest, event.comment, event.actor) == (
        "devdocker",
        "rcdocker",
        info.digest,
        "Approved for production use ✓",
        "API key pgutil",
    )


def test_username_and_password_in_x_apikey_act_as_that_person(gunicorn, demo, pushed):
    repo, info = pushed
    person_with_password("Promote Packages", "release-manager")
    user_with("View & Download Packages", username="release-manager")
    # ProGetClient(url, username, password) sends X-ApiKey: username:password.
    as_person = Pgutil(gunicorn, user="release-manager", password=PASSWORD)
    wrong = Pgutil(gunicorn, user="release-manager", password="not the password")

    # PromotePackageAsync (Inedo.ProGet/ProGetClient.cs), as the person.
    status, _, body = as_person.send(
        "POST",
        "api/promotions/promote",
        {"fromFeed": "devdocker", "name": repo, "version": "1.0", "toFeed": "rcdocker"},
    )
    refused, _, refusal = wrong.send("GET", "api/management/feeds/list")

    assert status == 200, body
    assert json.loads(body)["user"] == "release-manager"
    assert HistoryEvent.objects.get(action="promoted", repository=repo).actor == ("release-manager")
    assert "sha256:" + hashlib.sha256(manifest_at(demo, "rcdocker", repo)).hexdigest() == (
        info.digest
    )
    assert refused == 403
    assert json.loads(refusal)["error"] == "authentication failed: wrong user name or password"


# --- feeds -----------------------------------------------------------------------------
def test_feeds_create_list_get_update_delete_as_pgutil(pgutil):
    # pgutil/Feeds/CreateCommand.cs → ProGetClient.CreateFeedAsync: UpdateAsync(
    # "api/management/feeds/create", new ProGetFeed { Name, FeedType }) with --type=Docker.
    created = pgutil.json(
        "POST",
        "api/management/feeds/create",
        {"name": "qa-docker", "feedType": "Docker"},
        expect=201,
    )
    assert (created["name"], created["feedType"], created["active"]) == (
        "qa-docker",
        "docker",
        True,
    )

    # ProGetClient.ListFeedsAsync: GET api/management/feeds/list (ProGetFeed objects).
    listed = pgutil.json("GET", "api/management/feeds/list")
    assert {"devdocker", "rcdocker", "proddocker", "qa-docker"} <= {f["name"] for f in listed}
    assert all(f["alternateNames"] == [] and f["feedType"] == "docker" for f in listed)

    # pgutil/Feeds/Properties/SetCommand.cs (--property=active --value=false) →
    # ProGetClient.UpdateFeedAsync: PostAsJsonAsync("api/management/feeds/update/{feed}",
    # new ProGetFeed { Active = false }): only that property is sent.
    pgutil.json("POST", "api/management/feeds/update/qa-docker", {"active": False})
    pgutil.json(
        "POST",
        "api/management/feeds/update/qa-docker",
        {"description": "QA images", "alternateNames": []},
    )

    # ProGetClient.GetFeedAsync: GET api/management/feeds/get/{feed}.
    feed = pgutil.json("GET", "api/management/feeds/get/qa-docker")
    assert feed == {**created, "active": False, "description": "QA images"}
    assert Registry.objects.get(name="qa-docker").active is False

    # ProGetClient.DeleteFeedAsync: DeleteAsync("api/management/feeds/delete/{name}").
    deleted = pgutil.json("DELETE", "api/management/feeds/delete/qa-docker")
    assert deleted == {"deleted": "qa-docker"}
    status, _, body = pgutil.send("GET", "api/management/feeds/get/qa-docker")
    assert status == 404
    assert json.loads(body)["error"] == "There is no registry called 'qa-docker'."
    assert not Registry.objects.filter(name="qa-docker").exists()


def test_a_feed_property_promoter_does_not_have_is_refused_and_nothing_changes(pgutil):
    # SetCommand.cs --property=dropPath: ProGetFeed { DropPath = … }.
    status, _, body = pgutil.send(
        "POST", "api/management/feeds/update/devdocker", {"dropPath": "c:\\bulk-import"}
    )

    assert status == 400
    assert json.loads(body)["error"] == (
        "dropPath must be empty: images enter a Promoter feed by push or promotion."
    )
    assert pgutil.json("GET", "api/management/feeds/get/devdocker")["dropPath"] is None


# --- API keys --------------------------------------------------------------------------
def test_api_keys_create_list_delete_as_pgutil(pgutil, gunicorn, pushed):
    repo, _ = pushed
    person_with_password("View & Download Packages", "dev-person")

    # pgutil/ApiKeys/Create/SystemCommand.cs (no --apis: every AvailableSystemApis) →
    # ProGetClient.CreateApiKeyAsync: PostAsJsonAsync("api/api-keys/create", ApiKeyInfo).
    system = pgutil.json(
        "POST",
        "api/api-keys/create",
        {
            "type": "System",
            "displayName": "ci-bot",
            "description": "CI",
            "expiration": "2099-01-31T00:00:00",
            "systemApis": ["full-control", "feeds", "sbom", "sbom-upload"],
        },
        expect=201,
    )
    # pgutil/ApiKeys/Create/FeedCommand.cs (--feed, default permissions: all four).
    feed = pgutil.json(
        "POST",
        "api/api-keys/create",
        {
            "type": "Feed",
            "feed": "devdocker",
            "displayName": "pusher",
            "logging": "None",
            "packagePermissions": ["view", "add", "promote", "delete"],
        },
        expect=201,
    )
    # pgutil/ApiKeys/Create/PersonalCommand.cs (--user, Logging = ApiKeyBodyLogging.None).
    personal = pgutil.json(
        "POST",
        "api/api-keys/create",
        {"type": "Personal", "displayName": "laptop", "user": "dev-person", "logging": "None"},
        expect=201,
    )

    assert (system["type"], system["systemApis"], system["logging"]) == (
        "System",
        ["full-control"],
        "None",
    )
    assert system["expiration"].startswith("2099-01-31T00:00:00")
    assert (feed["type"], feed["feed"], feed["packagePermissions"]) == (
        "Feed",
        "devdocker",
        ["view", "add", "promote", "delete"],
    )
    assert (personal["type"], personal["user"]) == ("Personal", "dev-person")
    assert ApiKey.objects.get(pk=feed["id"]).permissions == ["view", "publish", "promote", "delete"]
    for created in (system, feed, personal):
        assert created["key"].startswith("pk_")

    # pgutil/ApiKeys/ListCommand.cs → ListApiKeysAsync: GET api/api-keys/list; it prints
    # DisplayName, Id, Expiration, Logging, Type, and SystemApis / User / Feed, Permissions.
    listed = {k["displayName"]: k for k in pgutil.json("GET", "api/api-keys/list")}
    assert {"ci-bot", "pusher", "laptop", "pgutil"} <= set(listed)
    assert all(k["logging"] == "None" and "key" not in k for k in listed.values())
    assert listed["laptop"]["user"] == "dev-person"

    # The new keys work as themselves.
    as_feed_key = Pgutil(gunicorn, api_key=feed["key"])
    status, _, body = as_feed_key.send(
        "POST",
        "api/promotions/promote",
        {"fromFeed": "devdocker", "name": repo, "version": "1.0", "toFeed": "rcdocker"},
    )
    assert status == 403  # view, add, promote, delete on devdocker only: not Promote on rcdocker
    assert "needs Promote Packages on rcdocker" in body.decode()
    assert Pgutil(gunicorn, api_key=system["key"]).json("GET", "api/api-keys/list")

    # pgutil/ApiKeys/DeleteCommand.cs → DeleteApiKeyAsync: PostAsync(
    # "api/api-keys/delete?id={id}", null).
    pgutil.json("POST", f"api/api-keys/delete?id={system['id']}", null_content=True)

    status, _, body = Pgutil(gunicorn, api_key=system["key"]).send("GET", "api/api-keys/list")
    assert status == 403
    assert "unknown, expired or revoked" in json.loads(body)["error"]
    listed = {k["displayName"]: k for k in pgutil.json("GET", "api/api-keys/list")}
    assert listed["ci-bot"]["revoked"] is not None
    assert ApiKey.objects.get(pk=system["id"]).revoked_at is not None


# --- health ----------------------------------------------------------------------------
def test_health_is_progets_health_object(pgutil):
    # pgutil/Health/HealthCommand.cs → ProGetClient.GetInstanceHealthAsync: GET "health"
    # (at the site's root), read as Inedo.ProGet/ProGetHealthInfo.cs.
    health = pgutil.json("GET", "health")

    assert health == {
        "applicationName": "Promoter",
        "databaseStatus": "OK",
        "databaseStatusDetails": None,
        "licenseStatus": "OK",
        "licenseStatusDetail": None,
        "versionNumber": health["versionNumber"],
        "releaseNumber": health["versionNumber"],
        "serviceStatus": "OK",
        "serviceStatusDetail": None,
        "replicationStatus": {
            "serverStatus": None,
            "serverError": None,
            "clientStatus": None,
            "clientError": None,
        },
    }
    assert health["versionNumber"].count(".") == 2


# --- chunked bodies --------------------------------------------------------------------
def test_a_chunked_body_over_the_limit_is_413_and_nothing_is_created(pgutil):
    status, _, body = pgutil.send(
        "POST",
        "api/management/feeds/create",
        {"name": "huge", "feedType": "Docker", "description": "x" * (70 * 1024)},
    )

    assert status == 413
    assert json.loads(body)["error"] == "The body is over the limit of 65536 bytes."
    assert not Registry.objects.filter(name="huge").exists()


def test_the_development_server_refuses_a_chunked_body_it_cannot_read(demo, system_key):
    # Django's runserver/live_server reads a body by Content-Length only: a chunked body
    # would look empty, so it is refused in words instead.
    status, _, body = Pgutil(demo.url, api_key=system_key).send(
        "POST", "api/management/feeds/create", {"name": "dev-only", "feedType": "Docker"}
    )

    assert status == 411
    assert "cannot read a chunked body" in json.loads(body)["error"]
    assert not Registry.objects.filter(name="dev-only").exists()


# --- ProGet's documented forms ---------------------------------------------------------
def test_progets_form_and_multipart_promote_with_the_key_field(gunicorn, pgutil, pushed, demo):
    repo, info = pushed
    group, _, name = repo.rpartition("/")
    fields = {
        "packageName": name,
        "groupName": group,
        "version": "1.0",
        "fromFeed": "devdocker",
        "toFeed": "rcdocker",
        "comments": "form",
    }

    # ProGet's docs (Promote Package): form fields, the key as the `key` field.
    form = requests.post(
        gunicorn + "/api/promotions/promote", data={**fields, "key": pgutil.api_key}, timeout=120
    )
    # …and multipart (curl -F), the key in X-ApiKey.
    multipart = requests.post(
        gunicorn + "/api/promotions/promote",
        files={k: (None, v) for k, v in fields.items()},
        headers={"X-ApiKey": pgutil.api_key},
        timeout=120,
    )

    assert (form.status_code, multipart.status_code) == (200, 200), (form.text, multipart.text)
    assert form.json()["digest"] == multipart.json()["digest"] == info.digest
    assert "sha256:" + hashlib.sha256(manifest_at(demo, "rcdocker", repo)).hexdigest() == (
        info.digest
    )

    # ProGet's list: without a key 401 in plain text; with one, the promotions.
    anonymous = requests.get(gunicorn + "/api/promotions/list", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"].startswith("text/plain")
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    listed = requests.get(
        gunicorn + "/api/promotions/list",
        params={"groupName": group, "packageName": name, "key": pgutil.api_key},
        timeout=30,
    )
    [package] = listed.json()
    # The second call asked for what the first had done: "already there", the same
    # promotion, no second one (issue 11).
    assert [p["comments"] for p in package["promotions"]] == ["form"]
    assert form.json()["id"] == multipart.json()["id"]
