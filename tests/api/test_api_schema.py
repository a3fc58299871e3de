"""The OpenAPI document is the truth: generated inputs (schemathesis over hypothesis) against the
live API find no 5xx and no answer that contradicts the document; the page renders it."""

from __future__ import annotations

import re
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import Api

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The examples bound the test: its time is linear in them (half generating and checking,
# half HTTP); 25 + 25 per operation took 20-30 s of a 170 s suite. The budget is a ceiling
# for a loaded machine, shared out fairly among the operations.
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 15}
BUDGET_SECONDS = 80


@pytest.mark.slow
def test_every_endpoint_conforms_to_the_openapi_document(api, demo):
    document = api.get("/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    # 14, 13 of policies, approvals, webhooks, audit, and 5 of batches, dry runs and reads
    # for the command-line client
    assert len(operations) == 33
    end = time.monotonic() + BUDGET_SECONDS
    calls: dict[str, set[int]] = {}
    runs = [
        (operation, mode, examples)
        for operation in operations
        for mode, examples in EXAMPLES.items()
        # GET /health has nothing to get wrong: no negative request exists.
        if not mode.is_negative or _has_inputs(operation.definition.raw)
    ]

    for done, (operation, mode, examples) in enumerate(runs):
        # A fair share of what is left of the budget, so a slow machine still reaches them all.
        deadline = time.monotonic() + (end - time.monotonic()) / (len(runs) - done)
        _exercise(
            operation,
            mode,
            examples,
            base_url=demo.url,
            key=api.key,
            deadline=deadline,
            calls=calls,
        )

    # Every operation was exercised, and several kinds of answers came back.
    assert set(calls) == {op.label for op in operations}, calls
    assert {400, 404} <= set().union(*calls.values()), calls


def _has_inputs(operation: dict) -> bool:
    """Parameters, a body or credentials: something a request can get wrong."""
    security = operation.get("security", [])
    return bool(operation.get("parameters") or "requestBody" in operation or security != [{}])


def _exercise(operation, mode, examples, *, base_url, key, deadline, calls) -> None:
    """Send `examples` generated requests for one operation; every answer must fit the document."""
    checks = CHECKS + ([negative_data_rejection] if mode.is_negative else [])
    sent: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        if sent and time.monotonic() > deadline:
            return  # out of time (but every run sends at least one request)
        response = case.call(base_url=base_url, headers={"X-ApiKey": key}, timeout=30)
        sent.append(response.status_code)
        calls.setdefault(operation.label, set()).add(response.status_code)
        case.validate_response(response, checks=checks)

    run()


def test_the_document_is_openapi_3_1_with_the_three_security_schemes(api):
    document = api.anonymous().get("/api/openapi.json").json()

    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"] == {
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-ApiKey"},
        "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "key"},
        "basic": {
            "type": "http",
            "scheme": "basic",
            "description": "`api:<key>`, or a person's user name and password.",
        },
    }
    promote = document["paths"]["/api/promotions/promote"]["post"]
    assert set(promote["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    assert {"200", "202", "400", "403", "404", "413", "415"} <= set(promote["responses"])


def test_the_docs_page_renders_every_endpoint_in_the_portals_look(demo):
    api = Api(demo.url)
    document = api.get("/api/openapi.json").json()

    page = api.get("/api/docs")

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert 'class="topbar"' in html and 'href="/api/docs" aria-current="page"' in html
    for path in document["paths"]:
        assert path in html, path
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in html, name
    # Nothing from another site: scripts and styles are the portal's own.
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html)
    assert "curl -X POST" in html
