"""No input makes the API answer 500: each hostile request gets the 4xx a person can act on."""

from __future__ import annotations

import pytest
import requests

from registries.models import Promotion, Registry

pytestmark = pytest.mark.django_db(transaction=True)

PROMOTE = "/api/promotions/promote"
FIELDS = {"name": "team/api", "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"}


def _raw(api, path, body: bytes, content_type: str | None, **kwargs):
    headers = {"Content-Type": content_type} if content_type else {}
    return api.post(path, data=body, headers={**headers, "X-ApiKey": api.key}, **kwargs)


BAD_BODIES = [
    (b"{", "application/json", 400, "not valid JSON"),
    (b"[1, 2]", "application/json", 400, "must be a JSON object"),
    (b'"text"', "application/json", 400, "must be a JSON object"),
    (b'{"name": "a", "name": "b"}', "application/json", 400, "more than once"),
    (b"\xff\xfe{}", "application/json", 400, "UTF-8"),
    (
        b'{"name": "\\ud800", "version": "1", "fromFeed": "devdocker"}',
        "application/json",
        400,
        "not valid",
    ),
    (b"[" * 30000 + b"]" * 30000, "application/json", 400, "not valid JSON"),
    (b'{"a":' * 10000 + b"1" + b"}" * 10000, "application/json", 400, "not valid JSON"),
    (b'{"version": ' + b"9" * 5000 + b"}", "application/json", 400, "not valid JSON"),
    (
        b'{"name": "team/api", "version": 1.0, "fromFeed": "devdocker"}',
        "application/json",
        400,
        "version must be a string",
    ),
    (
        b'{"name": ["team/api"], "version": "1", "fromFeed": "devdocker"}',
        "application/json",
        400,
        "name must be a string",
    ),
    (b"<promote/>", "application/xml", 415, "application/json"),
    (b"name=team/api", "text/plain", 415, "application/json"),
    (
        b"name=a&name=b&version=1&fromFeed=devdocker",
        "application/x-www-form-urlencoded",
        400,
        "more than once",
    ),
    (
        b"name=t%C3%ABam/api&version=1&fromFeed=devdocker",
        "application/x-www-form-urlencoded",
        400,
        "not a valid repository name",
    ),
    (
        b"name=team/api&version=1%0a2&fromFeed=devdocker",
        "application/x-www-form-urlencoded",
        400,
        "control characters",
    ),
    (
        b"name=team/api&version=1&fromFeed=dev%00docker",
        "application/x-www-form-urlencoded",
        400,
        "control characters",
    ),
    (
        b"name=team/api&version=1&fromFeed=devdocker&key=pk%00x",
        "application/x-www-form-urlencoded",
        400,
        "control characters",
    ),
    (b"--x\r\nbroken", "multipart/form-data; boundary=x", 400, ""),
    (b"", None, 400, "name is required"),
    (b"{}", "application/json", 400, "name is required"),
    (b'{"name": null, "packageName": null}', "application/json", 400, "name is required"),
]


def test_bad_promote_bodies_get_a_plain_4xx(api):
    for body, content_type, status, message in BAD_BODIES:
        response = _raw(api, PROMOTE, body, content_type)

        assert response.status_code == status, (body[:80], response.text)
        assert response.headers["Content-Type"].startswith("text/plain"), (
            body[:80],
            response.headers,
        )
        assert message in response.text, (body[:80], response.text)
    assert not Promotion.objects.exists()


def test_a_file_in_multipart_is_refused(api):
    response = api.post(PROMOTE, data=FIELDS, files={"comments": ("c.txt", b"hello")})

    assert response.status_code == 400
    assert "Files are not accepted" in response.text


def test_oversized_bodies_are_413(api):
    for size in (64 * 1024 + 1, 2 * 1024 * 1024):
        filler = "x" * size
        for response in (
            api.post(PROMOTE, json={**FIELDS, "comments": filler}),
            api.post(PROMOTE, data={**FIELDS, "comments": filler}),
            api.post(PROMOTE, data=FIELDS, files={"comments": (None, filler)}),
            api.post("/api/management/feeds/create", json={"name": "x", "description": filler}),
        ):
            assert response.status_code == 413, response.text[:200]
            assert "limit" in response.text or "over" in response.text


def test_json_endpoints_answer_json_errors(api):
    bad_json = _raw(api, "/api/management/feeds/create", b"{oops", "application/json")
    form = api.post("/api/management/feeds/create", data={"name": "x", "feedType": "docker"})
    big = api.post("/api/api-keys/create", json={"name": "x" * 70000, "type": "system"})

    assert (bad_json.status_code, form.status_code, big.status_code) == (400, 415, 413)
    for response in (bad_json, form, big):
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]


def test_control_characters_and_repeats_in_queries_are_400(api):
    for path in (
        "/api/promotions/list?fromFeed=%00",
        "/api/promotions/list?key=%00%01",
        "/api/promotions/list?version=a&version=b",
        "/api/management/feeds/list?key=pk%00",
        "/api/promotions/promote?async=maybe",
    ):
        method = "POST" if "promote?" in path else "GET"
        response = api.request(method, path, data=FIELDS)

        assert response.status_code == 400, (path, response.text)


def test_odd_paths_answer_json_404(api):
    for path in (
        "/api/management/feeds/get/%00",
        "/api/management/feeds/get/dev%2Fdocker",
        "/api/management/feeds/get/" + "a" * 250,
        "/api/management/feeds/get/d%C3%A9vdocker",
        "/api/promotions/status/abc",
        "/api/promotions/status/99999999999999999999999",
        "/api/promotions/status/-1",
        "/api/nothing/here",
    ):
        response = api.get(path)

        assert response.status_code == 404, (path, response.text)
        assert response.headers["Content-Type"] == "application/json"


def test_unicode_and_script_in_feed_description_round_trip(api):
    description = "Équipe 🚀 <script>alert(1)</script> \t tabs\nand lines"

    created = api.post(
        "/api/management/feeds/create",
        json={"name": "unicode-feed", "feedType": "docker", "description": description},
    )

    assert created.status_code == 201, created.text
    assert created.json()["description"] == description
    assert Registry.objects.get(name="unicode-feed").description == description


def test_wrong_methods_are_405_in_the_endpoints_error_style(api):
    get_promote = api.get(PROMOTE)
    post_list = api.post("/api/promotions/list")
    delete_get = requests.delete(api.url + "/api/management/feeds/get/devdocker", timeout=10)
    put_keys = api.request("PUT", "/api/api-keys/create", json={})

    # ProGet's two endpoints answer in plain text; every other one in the API's JSON.
    for response in (get_promote, post_list):
        assert response.status_code == 405
        assert response.headers["Content-Type"].startswith("text/plain")
    assert get_promote.text == "GET is not allowed here; use POST.\n"
    assert get_promote.headers["Allow"] == "POST"
    for response, allowed in ((delete_get, "GET"), (put_keys, "POST")):
        assert response.status_code == 405
        assert response.json() == {
            "error": f"{response.request.method} is not allowed here; use {allowed}."
        }
        assert response.headers["Allow"] == allowed
