"""The OpenAPI document: it builds, every operation is explained, errors are documented."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.core.time import utcnow
from setia.events.schemas import BatchIn, EventIn
from tests.conftest import TenantFixture

METHODS = ("get", "post", "put", "patch", "delete")
PROBLEM_REF = "#/components/schemas/Problem"


@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_the_document_builds(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "Setia"
    assert doc["info"]["description"]
    ops = operations(doc)
    assert len(ops) >= 25
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    # Every $ref points at a schema that exists.
    schemas = doc["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, ref


def test_every_operation_is_explained(doc: dict[str, Any]) -> None:
    """A written description (the docstring) or a summary set by hand, not one FastAPI
    derived from the function name."""
    missing = []
    for method, path, op in operations(doc):
        derived = op["operationId"].split("_v1_")[0].split("_healthz_")[0].replace("_", " ")
        summary = (op.get("summary") or "").strip()
        hand_summary = bool(summary) and summary.lower() != derived.lower()
        if not (op.get("description", "").strip() or hand_summary):
            missing.append(f"{method.upper()} {path}")
    assert missing == [], "operations without a description: " + ", ".join(missing)


def test_every_write_documents_its_problem_responses(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        if method == "get":
            continue
        errors = {s: r for s, r in op["responses"].items() if s.startswith("4")}
        where = f"{method.upper()} {path}"
        assert {"401", "422"} <= set(errors), where
        for status, response in errors.items():
            assert response.get("description"), (where, status)
            content = response.get("content", {})
            assert "application/problem+json" in content, (where, status)
            schema = content["application/problem+json"].get("schema", {})
            assert schema.get("$ref") == PROBLEM_REF, (where, status, content)
            # Errors are never sent as plain JSON, so the document must not promise it.
            assert "application/json" not in content, (where, status)
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])


def test_documented_problem_matches_what_is_sent(
    client: TestClient, doc: dict[str, Any], tenant: TenantFixture
) -> None:
    fields = set(doc["components"]["schemas"]["Problem"]["properties"])
    r = client.post("/v1/events", json={"id": "x"}, headers=tenant.headers)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert set(r.json()) <= fields
    r = client.get("/v1/tenant")
    assert r.status_code == 401
    assert set(r.json()) <= fields


def test_event_examples_exist_and_are_valid(
    client: TestClient, doc: dict[str, Any], tenant: TenantFixture
) -> None:
    examples = doc["components"]["schemas"]["EventIn"].get("examples")
    assert examples
    assert {e["type"] for e in examples} >= {"purchase", "refund"}
    for example in examples:
        EventIn.model_validate(example)
    # The examples work as written, in order: the refund returns part of the purchase.
    for example in examples:
        event = dict(example)
        when = event.get("occurred_at")
        if when and datetime.fromisoformat(when) > utcnow():
            del event["occurred_at"]
        r = client.post("/v1/events", json=event, headers=tenant.headers)
        assert r.status_code == 201, (example["id"], r.text)

    batch = doc["paths"]["/v1/events/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert batch.get("examples")
    for named in batch["examples"].values():
        body = BatchIn.model_validate(named["value"])
        for event in body.events:
            EventIn.model_validate(event)
    assert doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/EventIn"}


def test_writes_that_answer_two_successes_declare_both(doc: dict[str, Any]) -> None:
    """A write safe to repeat answers 201 the first time and 200 when repeated (or, for a
    PUT, 201 when it creates): both are in the document, with the same body."""
    import importlib
    import inspect
    import pkgutil

    import setia

    both = []
    for info in pkgutil.walk_packages(setia.__path__, "setia."):
        if not info.name.endswith("api") or info.name == "setia.core.api":
            continue
        router = getattr(importlib.import_module(info.name), "router", None)
        for route in getattr(router, "routes", []):
            source = inspect.getsource(route.endpoint)
            if "status_code = 201 if" not in source and "return _operation(" not in source:
                continue
            for method in route.methods:
                found = [
                    path
                    for m, path, op in operations(doc)
                    if m == method.lower()
                    and path.endswith(route.path)
                    and op["operationId"].startswith(route.endpoint.__name__ + "_")
                ]
                assert len(found) == 1, (info.name, route.path, found)
                both.append((method.lower(), found[0]))
    assert len(both) >= 20
    for method, path in both:
        responses = doc["paths"][path][method]["responses"]
        assert {"200", "201"} <= set(responses), (method, path)
        schemas = {
            str(responses[s]["content"]["application/json"]["schema"]) for s in ("200", "201")
        }
        assert len(schemas) == 1, (method, path, schemas)
