"""The fleet REST API: the page's filters and services behind JSON, errors as {detail, code}."""

from __future__ import annotations

import pytest

from access.services import access_key_create
from audit.models import AuditEvent
from fleet.models import Activation, ManagedNode, ResourceGroup
from tests.factories import ManagedNodeFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bearer(admin):
    key, secret = access_key_create(principal=admin, user=admin.user)
    return {"Authorization": f"Bearer {key.access_key_id}:{secret}"}


def test_the_node_list_needs_credentials(client):
    assert client.get("/api/v1/nodes/").status_code == 401


def test_an_access_key_lists_nodes_with_counts(client, bearer, dev_node, prod_node):
    body = client.get("/api/v1/nodes/", headers=bearer).json()
    assert body["count"] == 2
    assert body["counts"] == {"Online": 2, "ConnectionLost": 0, "Deregistered": 0}
    assert {node["tags"]["Env"] for node in body["results"]} == {"dev", "prod"}


def test_the_api_shares_the_pages_filters(admin_client, dev_node, prod_node):
    body = admin_client.get("/api/v1/nodes/", {"tag": "Env=prod", "sort": "-name"}).json()
    assert [node["id"] for node in body["results"]] == [prod_node.pk]
    bad = admin_client.get("/api/v1/nodes/", {"sort": "sideways"})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"


def test_the_operator_lists_only_dev_nodes_and_is_refused_prod(
    operator_client, dev_node, prod_node
):
    body = operator_client.get("/api/v1/nodes/").json()
    assert [node["id"] for node in body["results"]] == [dev_node.pk]
    refused = operator_client.get(f"/api/v1/nodes/{prod_node.pk}/")
    assert refused.status_code == 403
    assert refused.json()["code"] == "access_denied"


def test_the_outsider_gets_a_403_with_detail_and_code(outsider_client, dev_node):
    response = outsider_client.get("/api/v1/nodes/")
    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}


def test_an_unknown_node_is_a_404_in_the_api_shape(admin_client):
    response = admin_client.get("/api/v1/nodes/mi-00000000000000000/")
    assert response.status_code == 404
    assert response.json()["code"] == "invalid_instance_id"


def test_node_detail_includes_facts(admin_client, dev_node):
    body = admin_client.get(f"/api/v1/nodes/{dev_node.pk}/").json()
    assert body["id"] == dev_node.pk and "facts" in body and body["suspected_clone"] is False


def test_tags_are_added_and_removed(admin_client, dev_node):
    url = f"/api/v1/nodes/{dev_node.pk}/tags/"
    added = admin_client.post(url, {"tags": {"Team": "ops"}}, content_type="application/json")
    assert added.json()["tags"] == {"Env": "dev", "Role": "web", "Team": "ops"}
    removed = admin_client.delete(f"{url}?key=Team&key=Role")
    assert removed.json()["tags"] == {"Env": "dev"}
    aws_shape = admin_client.post(
        url, {"tags": [{"Key": "A", "Value": "b"}]}, content_type="application/json"
    )
    assert aws_shape.json()["tags"]["A"] == "b"
    body_keys = admin_client.delete(url, {"keys": ["A"]}, content_type="application/json")
    assert "A" not in body_keys.json()["tags"]


def test_bad_tags_are_a_400_with_a_clear_detail(admin_client, dev_node):
    response = admin_client.post(
        f"/api/v1/nodes/{dev_node.pk}/tags/",
        {"tags": {"aws:x": "1"}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "reserved prefix" in response.json()["detail"]


def test_bulk_tags_report_per_node(admin_client, dev_node):
    response = admin_client.post(
        "/api/v1/nodes/tags/",
        {"node_ids": [dev_node.pk, "mi-00000000000000000"], "add": {"Patch": "weekly"}},
        content_type="application/json",
    )
    assert response.json() == {
        "changed": [dev_node.pk],
        "refused": [],
        "skipped": {"mi-00000000000000000": "no such managed node"},
    }


def test_deregister(admin_client, dev_node):
    response = admin_client.post(f"/api/v1/nodes/{dev_node.pk}/deregister/")
    assert response.json()["status"] == "Deregistered"
    again = admin_client.post(f"/api/v1/nodes/{dev_node.pk}/deregister/")
    assert again.status_code == 404 and again.json()["code"] == "invalid_instance_id"


def test_an_activation_code_is_returned_once(admin_client):
    created = admin_client.post(
        "/api/v1/activations/",
        {"description": "lab", "registration_limit": 3, "tags": {"Env": "dev"}},
        content_type="application/json",
    )
    assert created.status_code == 201
    body = created.json()
    code = body["activation_code"]
    assert body["registration_limit"] == 3 and body["expired"] is False
    listed = admin_client.get("/api/v1/activations/").json()
    assert listed["count"] == 1 and code not in str(listed)
    detail = admin_client.get(f"/api/v1/activations/{body['id']}/").json()
    assert "activation_code" not in detail
    assert admin_client.delete(f"/api/v1/activations/{body['id']}/").status_code == 204
    assert not Activation.objects.exists()


def test_activation_errors_are_detail_and_code(admin_client, operator_client):
    response = admin_client.post(
        "/api/v1/activations/", {"registration_limit": 0}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["code"] == "validation_error"
    assert "registration_limit" in response.json()["detail"]


def test_the_operator_may_not_create_activations(operator_client):
    response = operator_client.post("/api/v1/activations/", {}, content_type="application/json")
    assert response.status_code == 403
    assert AuditEvent.objects.get(action="ssm:CreateActivation").face == "api"


def test_resource_group_crud(admin_client, dev_node, prod_node):
    query = {"TagFilters": [{"Key": "Env", "Values": ["dev"]}]}
    created = admin_client.post(
        "/api/v1/resource-groups/",
        {"name": "devs", "query": query},
        content_type="application/json",
    )
    assert created.status_code == 201
    detail = admin_client.get("/api/v1/resource-groups/devs/").json()
    assert detail["node_count"] == 1
    members = admin_client.get("/api/v1/nodes/", {"group": "devs"}).json()
    assert [node["id"] for node in members["results"]] == [dev_node.pk]
    updated = admin_client.put(
        "/api/v1/resource-groups/devs/",
        {"query": {"TagFilters": [{"Key": "Role", "Values": ["web"]}]}},
        content_type="application/json",
    )
    assert updated.json()["query"]["TagFilters"][0]["Key"] == "Role"
    assert admin_client.get("/api/v1/resource-groups/").json()["count"] == 1
    assert admin_client.delete("/api/v1/resource-groups/devs/").status_code == 204
    assert not ResourceGroup.objects.exists()


def test_a_bad_group_query_is_a_400(admin_client):
    response = admin_client.post(
        "/api/v1/resource-groups/",
        {"name": "x", "query": {"TagFilters": []}},
        content_type="application/json",
    )
    assert response.status_code == 400 and "at least one tag filter" in response.json()["detail"]


def test_targets_resolve(admin_client, dev_node, prod_node):
    ResourceGroupFactory(name="devs")
    response = admin_client.post(
        "/api/v1/targets/resolve",
        {
            "targets": [{"Key": "resource-groups:Name", "Values": ["devs"]}],
            "action": "ssm:SendCommand",
        },
        content_type="application/json",
    )
    assert response.json()["InstanceIds"] == [dev_node.pk]
    assert response.json()["Online"] == 1


def test_targets_resolve_refuses_bad_targets_and_unknown_actions(admin_client):
    bad = admin_client.post(
        "/api/v1/targets/resolve",
        {"targets": [{"Key": "Nope", "Values": ["x"]}]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_target"
    action = admin_client.post(
        "/api/v1/targets/resolve",
        {"targets": [{"Key": "tag-key", "Values": ["Env"]}], "action": "ssm:Nope"},
        content_type="application/json",
    )
    assert action.status_code == 400


def test_many_nodes_page_through_the_api(admin_client):
    ManagedNodeFactory.create_batch(60)
    first = admin_client.get("/api/v1/nodes/").json()
    assert first["count"] == 60 and len(first["results"]) == 50 and first["next"]
    assert ManagedNode.objects.count() == 60
