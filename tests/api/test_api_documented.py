"""Every documented field is what the endpoint returns: each success answer the OpenAPI
document declares is produced live, validated against its documented schema, and its keys
are exactly the documented properties (none missing, none undocumented), all the way down."""

from __future__ import annotations

import jsonschema_rs
import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_documented_answer_is_exactly_what_the_endpoint_returns(api, demo, pushed, settings):
    repo, _ = pushed
    document = api.get("/api/openapi.json").json()
    fields = {"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"}
    answers = {}  # (method, documented path, status) -> the responses

    def call(method: str, path: str, url: str | None = None, **kwargs):
        response = api.request(method, url or path, **kwargs)
        answers.setdefault((method, path, str(response.status_code)), []).append(response)
        return response

    promote = "/api/promotions/promote"
    call("POST", promote, promote + "?dryRun=true", json=fields)  # 200 too: a preview
    promoted = call("POST", promote, json=fields)
    call("POST", promote, "/api/promotions/promote?async=true", json=fields)
    call("GET", "/api/promotions/list")
    status_path = "/api/promotions/status/{promotion_id}"
    call("GET", status_path, promoted.headers["Location"])
    _batches_search_history(call, repo)
    call("GET", "/api/management/feeds/list")
    call("GET", "/api/management/feeds/get/{name}", "/api/management/feeds/get/devdocker")
    call("POST", "/api/management/feeds/create", json={"name": "qa1", "feedType": "Docker"})
    call("POST", "/api/management/feeds/create", json={"name": "qa2", "feedType": "docker"})
    call(
        "POST",
        "/api/management/feeds/update/{name}",
        "/api/management/feeds/update/qa1",
        json={"description": "QA"},
    )
    delete = "/api/management/feeds/delete/{name}"
    call("POST", delete, "/api/management/feeds/delete/qa1")
    call("DELETE", delete, "/api/management/feeds/delete/qa2")
    feed_key = call(
        "POST",
        "/api/api-keys/create",
        json={
            "type": "Feed",
            "displayName": "feed-key",
            "feed": "devdocker",
            "packagePermissions": ["view"],
        },
    ).json()
    system_key = call(
        "POST", "/api/api-keys/create", json={"type": "System", "displayName": "sys"}
    ).json()
    call("GET", "/api/api-keys/list")
    call(
        "POST",
        "/api/api-keys/delete/{api_key_id}",
        f"/api/api-keys/delete/{feed_key['id']}",
    )
    call("POST", "/api/api-keys/delete", f"/api/api-keys/delete?id={system_key['id']}")
    _policies_approvals_webhooks(call, repo, settings)
    call("GET", "/health")
    call("GET", "/api/audit/events", "/api/audit/events?action=pushed")
    settings.PROMOTER_REGISTRY_URL = "http://127.0.0.1:9"  # nothing listens: the registry is down
    down = call("GET", "/health")
    assert down.json()["serviceStatus"] == "Error"
    # And an error: the Error schema holds too.
    call("GET", "/api/management/feeds/get/{name}", "/api/management/feeds/get/nofeed")

    documented = {
        (method.upper(), path, status)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        if status.startswith(("2", "5")) and "application/json" in answer.get("content", {})
    }
    assert documented <= set(answers), sorted(documented - set(answers))
    components = document["components"]["schemas"]
    for (method, path, status), responses in answers.items():
        operation = document["paths"][path][method.lower()]
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        for response in responses:
            body = response.json()
            validator = jsonschema_rs.validator_for(
                {**schema, "components": document["components"]}
            )
            errors = [error.message for error in validator.iter_errors(body)]
            assert not errors, (method, path, status, errors, body)
            _same_keys(body, schema, components, where=f"{method} {path} {status}")


def _batches_search_history(call, repo: str) -> None:
    """Batches (a dry run, one with a refused image, run again), search and History."""
    body = {"fromFeed": "devdocker", "images": [f"{repo}:1.0", f"{repo}:9.9"]}
    call("POST", "/api/promotions/batch", "/api/promotions/batch?dryRun=true", json=body)
    batch = call("POST", "/api/promotions/batch", json=body).json()
    call("GET", "/api/promotions/batches/{batch_id}", f"/api/promotions/batches/{batch['id']}")
    call(
        "POST",
        "/api/promotions/batches/{batch_id}/rerun-failed",
        f"/api/promotions/batches/{batch['id']}/rerun-failed",
    )
    call("GET", "/api/promotions/search", "/api/promotions/search?fromFeed=devdocker")
    call(
        "GET",
        "/api/promotions/history",
        f"/api/promotions/history?feed=devdocker&name={repo}&version=1.0",
    )


def _policies_approvals_webhooks(call, repo: str, settings) -> None:
    """Policies, approval requests and webhooks (rcdocker holds repo:1.0 by now)."""
    settings.PROMOTER_WEBHOOK_ATTEMPTS = 1  # nothing listens at the webhook's URL below
    call("GET", "/api/policies/get/{name}", "/api/policies/get/proddocker")
    call(
        "POST",
        "/api/policies/update/{name}",
        "/api/policies/update/proddocker",
        json={"approvalsRequired": 1, "requiredLabels": [{"key": "a", "pattern": "b"}]},
    )
    call(
        "POST",
        "/api/policies/update/{name}",
        "/api/policies/update/proddocker",
        json={"requiredLabels": []},
    )
    fields = {"name": repo, "version": "1.0", "fromFeed": "rcdocker"}
    asked = call("POST", "/api/approvals/request", json=fields).json()
    call("GET", "/api/approvals/list")
    call("GET", "/api/approvals/get/{request_id}", f"/api/approvals/get/{asked['id']}")
    call(
        "POST",
        "/api/approvals/decide/{request_id}",
        f"/api/approvals/decide/{asked['id']}",
        json={"approve": True, "comment": "ok"},
        key="",
        auth=("Admin", PASSWORD),
    )
    hook = call(
        "POST",
        "/api/webhooks/create",
        json={"name": "ci", "url": "http://127.0.0.1:9/hook", "events": ["push"]},
    ).json()
    call("GET", "/api/webhooks/list")
    call(
        "POST",
        "/api/webhooks/update/{webhook_id}",
        f"/api/webhooks/update/{hook['id']}",
        json={"active": False},
    )
    test = call(
        "POST", "/api/webhooks/test/{webhook_id}", f"/api/webhooks/test/{hook['id']}"
    ).json()
    call("GET", "/api/webhooks/deliveries/{webhook_id}", f"/api/webhooks/deliveries/{hook['id']}")
    call(
        "POST",
        "/api/webhooks/redeliver/{delivery_id}",
        f"/api/webhooks/redeliver/{test['id']}",
    )
    call("POST", "/api/webhooks/delete/{webhook_id}", f"/api/webhooks/delete/{hook['id']}")


def _same_keys(value, schema: dict, components: dict, *, where: str) -> None:
    """The object's keys are exactly the documented properties, recursively."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    if "oneOf" in schema:  # one status, several shapes: the one the value validates against
        document = {"components": {"schemas": components}}
        matching = [
            option
            for option in schema["oneOf"]
            if jsonschema_rs.validator_for({**option, **document}).is_valid(value)
        ]
        assert len(matching) == 1, (where, "matches", len(matching), "of oneOf")
        _same_keys(value, matching[0], components, where=where)
        return
    if "anyOf" in schema:  # nullable: follow the branch the value is in
        for option in schema["anyOf"]:
            if option.get("type") != "null" and value is not None:
                _same_keys(value, option, components, where=where)
        return
    if isinstance(value, list):
        for item in value:
            _same_keys(item, schema.get("items", {}), components, where=where)
    elif isinstance(value, dict):
        properties = schema.get("properties", {})
        assert set(value) == set(properties), (
            where,
            "undocumented:",
            set(value) - set(properties),
            "missing:",
            set(properties) - set(value),
        )
        for name, item in value.items():
            _same_keys(item, properties[name], components, where=f"{where} .{name}")
