from __future__ import annotations

import re

import pytest

from tests.api.helpers import API

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture()
def document(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def _openapi_path(rule: str) -> str:
    """Flask's /x/<int:request_id> as OpenAPI's /x/{request_id}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _routes(app) -> set[tuple[str, str]]:
    return {
        (_openapi_path(rule.rule), method.lower())
        # Every JSON route: API v1 and the dashboard's /api/dashboard/...
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
        for method in rule.methods - IGNORED_METHODS
    }


def _described(document) -> set[tuple[str, str]]:
    http_methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return {(path, method) for path, item in document["paths"].items() for method in item if method in http_methods}


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_openapi_is_an_openapi_3_document_without_a_token(document):
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] and document["info"]["version"]
    assert isinstance(document["paths"], dict) and document["paths"]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}


def test_openapi_path_conversion_helper():
    assert _openapi_path("/api/v1/service-requests/<int:request_id>/comments") == (
        "/api/v1/service-requests/{request_id}/comments")
    assert _openapi_path("/api/v1/things/<name>") == "/api/v1/things/{name}"


def test_openapi_routes_exist(app):
    assert ("/api/v1/service-requests/{request_id}", "patch") in _routes(app)


def test_openapi_describes_every_api_route_and_method(app, document):
    missing = _routes(app) - _described(document)

    assert not missing, f"routes not in openapi.json: {sorted(missing)}"


def test_openapi_describes_only_routes_that_exist(app, document):
    extra = _described(document) - _routes(app)

    assert not extra, f"openapi.json describes routes that do not exist: {sorted(extra)}"


def test_openapi_every_operation_has_responses_and_declares_path_parameters(document):
    for path, item in document["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            assert operation.get("responses"), (path, method)
            declared = {p["name"] for p in operation.get("parameters", []) + item.get("parameters", [])
                        if p["in"] == "path"}
            assert declared == names, (path, method)


def test_openapi_every_ref_resolves_to_a_component_schema(document):
    schemas = document["components"]["schemas"]
    refs = set(_refs(document))

    assert refs, "expected the document to use $ref"
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_openapi_every_component_schema_is_used(document):
    used = {ref.removeprefix("#/components/schemas/") for ref in _refs(document)}

    assert set(document["components"]["schemas"]) <= used


def test_openapi_document_passes_an_openapi_validator(document):
    """The served document, checked by openapi-spec-validator against the version it declares."""
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    try:
        validate(document)
    except OpenAPIValidationError as exc:  # the message alone; the default repr is the whole document
        pytest.fail(f"openapi.json is not valid OpenAPI {document['openapi']}: {exc.message} at {list(exc.path)}")
