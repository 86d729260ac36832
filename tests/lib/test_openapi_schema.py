"""The OpenAPI document of the REST API: served, valid, and complete for its endpoints."""

from __future__ import annotations

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

PARAMETER_PATHS = {
    "/api/v1/parameters/",
    "/api/v1/parameters/value/",
    "/api/v1/parameters/values/",
    "/api/v1/parameters/path/",
    "/api/v1/parameters/history/",
    "/api/v1/parameters/delete/",
    "/api/v1/parameters/labels/",
    "/api/v1/parameters/labels/remove/",
    "/api/v1/parameters/tags/",
    "/api/v1/parameters/export/",
    "/api/v1/parameters/import/",
    "/api/v1/parameters/notices/",
}
FLEET_PATHS = {
    "/api/v1/nodes/",
    "/api/v1/nodes/tags/",
    "/api/v1/nodes/{node_id}/",
    "/api/v1/nodes/{node_id}/tags/",
    "/api/v1/nodes/{node_id}/deregister/",
    "/api/v1/activations/",
    "/api/v1/activations/{activation_id}/",
    "/api/v1/resource-groups/",
    "/api/v1/resource-groups/{name}/",
    "/api/v1/targets/resolve",
}
COMMANDS_PATHS = {
    "/api/v1/documents/",
    "/api/v1/documents/{name}/",
    "/api/v1/documents/{name}/metadata/",
    "/api/v1/documents/{name}/versions/",
    "/api/v1/documents/{name}/default-version/",
    "/api/v1/commands/",
    "/api/v1/commands/{command_id}/",
    "/api/v1/commands/{command_id}/cancel/",
    "/api/v1/commands/{command_id}/invocations/",
    "/api/v1/commands/{command_id}/invocations/{node_id}/",
    "/api/v1/commands/{command_id}/invocations/{node_id}/output/",
}
CHECKED_SOURCES = (
    "parameters/api",
    "fleet/api",
    "commands/api",
    "/api/v1/parameters",
    "/api/v1/documents",
    "/api/v1/commands",
)


@pytest.mark.django_db
def test_the_schema_is_served_as_openapi_3_json(admin_client):
    response = admin_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) >= PARAMETER_PATHS | FLEET_PATHS | COMMANDS_PATHS
    assert document["components"]["securitySchemes"]["accessKey"]["scheme"] == "bearer"


def test_the_parameter_fleet_and_commands_endpoints_generate_without_errors_or_warnings():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        document = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(document)
    problems = [
        message
        for message in [*GENERATOR_STATS._error_cache, *GENERATOR_STATS._warn_cache]
        if any(source in message for source in CHECKED_SOURCES)
    ]
    assert problems == []


def test_every_parameter_operation_documents_its_input_and_output():
    document = SchemaGenerator().get_schema(request=None, public=True)
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path in PARAMETER_PATHS
        for method, operation in item.items()
    ]
    assert len(operations) == 16
    for path, method, operation in operations:
        assert operation["tags"] == ["Parameter Store"], (path, method)
        assert "200" in operation["responses"] or "201" in operation["responses"], (path, method)
        assert "400" in operation["responses"], (path, method)
        if method == "post":
            assert "requestBody" in operation, path
        if method in ("get", "delete"):
            assert operation.get("parameters"), (path, method)
    value = document["paths"]["/api/v1/parameters/value/"]["get"]
    decrypt = next(p for p in value["parameters"] if p["name"] == "decrypt")
    assert decrypt["schema"]["type"] == "boolean"


def test_every_documents_and_commands_operation_documents_its_input_and_output():
    document = SchemaGenerator().get_schema(request=None, public=True)
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path in COMMANDS_PATHS
        for method, operation in item.items()
    ]
    assert len(operations) == 15
    for path, method, operation in operations:
        assert operation["tags"] in (["Documents"], ["Run Command"]), (path, method)
        assert {"200", "201", "204"} & set(operation["responses"]), (path, method)
        assert {"400", "403", "404"} <= set(operation["responses"]), (path, method)
        if method in ("post", "put"):
            assert "requestBody" in operation, (path, method)
    send = document["paths"]["/api/v1/commands/"]["post"]
    assert "201" in send["responses"]
    output = document["paths"]["/api/v1/commands/{command_id}/invocations/{node_id}/output/"]
    assert "text/plain" in output["get"]["responses"]["200"]["content"]
