"""The Parameter Store REST API: writes, reads, paging and errors as {detail, code}."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from access.services import access_key_create
from audit.models import AuditEvent
from parameters import services
from parameters.models import Parameter

pytestmark = pytest.mark.django_db

API = "/api/v1/parameters/"


@pytest.fixture
def bearer(admin):
    key, secret = access_key_create(principal=admin, user=admin.user)
    return {"Authorization": f"Bearer {key.access_key_id}:{secret}"}


@pytest.fixture
def secret(admin):
    return services.parameter_put(
        principal=admin, name="/app/db/password", value="hunter2", parameter_type="SecureString"
    )


def put(client, **data):
    return client.post(API, data, content_type="application/json")


def make(admin, name, value="v", parameter_type="String", **more):
    return services.parameter_put(
        principal=admin, name=name, value=value, parameter_type=parameter_type, **more
    )


# --- Put ------------------------------------------------------------------------------------


def test_the_api_needs_credentials(client):
    assert client.get(API).status_code == 401
    assert client.get(f"{API}value/", {"name": "/a"}).status_code == 401


def test_a_put_creates_with_201_and_an_overwrite_answers_200(admin_client):
    created = put(
        admin_client,
        name="/app/url",
        value="https://a",
        type="String",
        description="where the app lives",
        allowed_pattern="^https://",
        tags={"Env": "dev"},
    )
    assert created.status_code == 201
    assert created.json() == {"name": "/app/url", "version": 1, "tier": "Standard"}
    again = put(admin_client, name="/app/url", value="https://b", overwrite=True)
    assert again.status_code == 200 and again.json()["version"] == 2
    parameter = Parameter.objects.get(name="/app/url")
    # Settings left out of an overwrite are kept, not cleared.
    assert (parameter.description, parameter.allowed_pattern, parameter.type) == (
        "where the app lives",
        "^https://",
        "String",
    )


def test_an_overwrite_may_clear_a_setting_it_names(admin_client, admin):
    make(admin, "/app/url", description="old")
    put(admin_client, name="/app/url", value="v2", overwrite=True, description="")
    assert Parameter.objects.get(name="/app/url").description == ""


def test_a_put_without_overwrite_of_an_existing_name_is_a_409(admin_client, admin):
    make(admin, "/app/url")
    response = put(admin_client, name="/app/url", value="x", type="String")
    assert response.status_code == 409
    assert response.json()["code"] == "parameter_already_exists"


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (
            {"name": "app/url", "value": "v", "type": "String"},
            "validation_error",
            "fully qualified",
        ),
        ({"name": "/a//b", "value": "v", "type": "String"}, "validation_error", "empty level"),
        ({"name": "/aws/x", "value": "v", "type": "String"}, "validation_error", "reserved"),
        ({"name": "/app/x", "value": "v"}, "validation_error", "type is required"),
        ({"name": "/app/x", "value": "v", "type": "Text"}, "validation_error", "type"),
        ({"value": "v", "type": "String"}, "validation_error", "name"),
        (
            {
                "name": "/app/x",
                "value": "v",
                "type": "String",
                "overwrite": True,
                "tags": {"A": "b"},
            },
            "validation_error",
            "tags and overwrite can't be used together",
        ),
        (
            {"name": "/app/x", "value": "x" * 4097, "type": "String"},
            "validation_error",
            "Standard tier parameters support a maximum",
        ),
        (
            {"name": "/app/x", "value": "v", "type": "String", "tags": "Env"},
            "validation_error",
            "tags",
        ),
        (
            {"name": "/app/x", "value": "v", "type": "String", "overwrite": "maybe"},
            "validation_error",
            "overwrite",
        ),
    ],
)
def test_a_bad_put_is_a_400_with_a_clear_detail(admin_client, data, code, words):
    response = put(admin_client, **data)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert words in response.json()["detail"]
    assert not Parameter.objects.exists()


def test_a_pattern_mismatch_is_a_400_that_never_echoes_the_value(admin_client):
    response = put(
        admin_client,
        name="/app/pin",
        value="s3cr3t-value",
        type="SecureString",
        allowed_pattern="^[0-9]+$",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parameter_pattern_mismatch"
    assert "s3cr3t-value" not in response.content.decode()


def test_a_large_value_fits_the_advanced_tier_with_policies_given_as_a_list(admin_client):
    policies = [
        {
            "Type": "Expiration",
            "Version": "1.0",
            "Attributes": {"Timestamp": "2099-01-01T00:00:00Z"},
        }
    ]
    response = put(
        admin_client,
        name="/app/big",
        value="x" * 5000,
        type="String",
        tier="Advanced",
        policies=policies,
    )
    assert response.status_code == 201 and response.json()["tier"] == "Advanced"
    described = admin_client.get(API, {"name_begins_with": "/app/big"}).json()["results"][0]
    assert described["policies"][0]["policy_type"] == "Expiration"
    assert described["policies"][0]["policy_status"] == "Pending"


def test_an_outsider_is_refused_writes_and_reads_with_a_403(outsider_client, admin, secret):
    refused = put(outsider_client, name="/app/x", value="v", type="String")
    assert refused.status_code == 403 and refused.json()["code"] == "access_denied"
    read = outsider_client.get(f"{API}value/", {"name": "/app/db/password"})
    assert read.status_code == 403 and set(read.json()) == {"detail", "code"}


def test_the_auditor_may_not_read_a_parameter(auditor_client, secret):
    assert auditor_client.get(f"{API}value/", {"name": "/app/db/password"}).status_code == 403


# --- Values ---------------------------------------------------------------------------------


def test_a_secure_string_reads_as_ciphertext_unless_decrypted(admin_client, secret):
    sealed = admin_client.get(f"{API}value/", {"name": "/app/db/password"})
    body = sealed.json()
    assert body["value"] != "hunter2" and body["type"] == "SecureString"
    assert "no-store" not in sealed.get("Cache-Control", "")
    assert set(body) == {
        "name",
        "type",
        "value",
        "version",
        "selector",
        "last_modified_date",
        "arn",
        "data_type",
    }
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()
    opened = admin_client.get(f"{API}value/", {"name": "/app/db/password", "decrypt": "true"})
    assert opened.json()["value"] == "hunter2"
    assert opened["Cache-Control"] == "no-store"
    assert AuditEvent.objects.filter(action="kms:Decrypt", face="api").count() == 1


def test_a_value_is_read_by_version_or_label(admin_client, admin):
    make(admin, "/app/color", "red")
    make(admin, "/app/color", "blue", overwrite=True)
    services.parameter_label(principal=admin, name="/app/color", labels=["live"], version=1)
    first = admin_client.get(f"{API}value/", {"name": "/app/color:1"}).json()
    assert (first["value"], first["selector"]) == ("red", ":1")
    live = admin_client.get(f"{API}value/", {"name": "/app/color:live"}).json()
    assert (live["value"], live["version"]) == ("red", 1)
    missing = admin_client.get(f"{API}value/", {"name": "/app/color:7"})
    assert missing.status_code == 404 and missing.json()["code"] == "parameter_version_not_found"


def test_an_unknown_parameter_is_a_404(admin_client):
    response = admin_client.get(f"{API}value/", {"name": "/nope"})
    assert response.status_code == 404
    assert response.json() == {
        "detail": "Parameter /nope not found.",
        "code": "parameter_not_found",
    }


@pytest.mark.parametrize("flag", ["yes", "TRUEISH", "2"])
def test_a_boolean_query_parameter_takes_only_true_false_1_or_0(admin_client, secret, flag):
    response = admin_client.get(f"{API}value/", {"name": "/app/db/password", "decrypt": flag})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("decrypt:")


def test_1_and_0_are_booleans_too(admin_client, secret):
    url = f"{API}value/"
    assert admin_client.get(url, {"name": "/app/db/password", "decrypt": "1"}).json()["value"] == (
        "hunter2"
    )
    assert admin_client.get(url, {"name": "/app/db/password", "decrypt": "0"}).json()["value"] != (
        "hunter2"
    )


def test_an_unknown_query_parameter_is_a_400(admin_client, secret):
    response = admin_client.get(f"{API}value/", {"name": "/app/db/password", "decrpyt": "true"})
    assert response.status_code == 400 and response.json()["detail"].startswith("decrpyt:")


def test_several_values_at_once_report_the_missing(admin_client, admin, secret):
    make(admin, "/app/a", "1")
    response = admin_client.get(
        f"{API}values/", {"name": ["/app/a", "/app/db/password", "/app/none"], "decrypt": "true"}
    )
    body = response.json()
    assert [p["value"] for p in body["parameters"]] == ["1", "hunter2"]
    assert body["invalid_parameters"] == ["/app/none"]
    assert response["Cache-Control"] == "no-store"
    too_many = admin_client.get(f"{API}values/", {"name": [f"/p{i}" for i in range(11)]})
    assert too_many.status_code == 400 and "name" in too_many.json()["detail"]


# --- By path --------------------------------------------------------------------------------


def test_a_path_read_pages_through_more_than_ten_parameters(admin_client, admin):
    for number in range(23):
        make(admin, f"/svc/key{number:02d}", str(number))
    make(admin, "/svc/deep/er", "x")
    make(admin, "/other", "x")
    names, token, pages = [], None, 0
    while True:
        query = {"path": "/svc", "recursive": "false", **({"next_token": token} if token else {})}
        body = admin_client.get(f"{API}path/", query).json()
        names += [p["name"] for p in body["parameters"]]
        token, pages = body["next_token"], pages + 1
        if token is None:
            break
    assert pages == 3 and names == [f"/svc/key{n:02d}" for n in range(23)]
    everything = admin_client.get(
        f"{API}path/", {"path": "/svc", "recursive": "true", "max_results": 10}
    )
    assert len(everything.json()["parameters"]) == 10


def test_a_path_read_filters_and_keeps_secure_strings_sealed(admin_client, admin, secret):
    make(admin, "/app/db/host", "db.local")
    body = admin_client.get(f"{API}path/", {"path": "/app", "recursive": "1"}).json()
    values = {p["name"]: p["value"] for p in body["parameters"]}
    assert values["/app/db/host"] == "db.local" and values["/app/db/password"] != "hunter2"
    only_secure = admin_client.get(
        f"{API}path/",
        {"path": "/app", "recursive": "true", "type": "SecureString", "decrypt": "true"},
    )
    assert [(p["name"], p["value"]) for p in only_secure.json()["parameters"]] == [
        ("/app/db/password", "hunter2")
    ]
    assert only_secure["Cache-Control"] == "no-store"


def test_a_tampered_next_token_is_a_400(admin_client, admin):
    for number in range(12):
        make(admin, f"/svc/k{number:02d}")
    token = admin_client.get(f"{API}path/", {"path": "/svc"}).json()["next_token"]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    response = admin_client.get(f"{API}path/", {"path": "/svc", "next_token": tampered})
    assert response.status_code == 400 and response.json()["code"] == "invalid_next_token"
    elsewhere = admin_client.get(f"{API}path/", {"path": "/", "next_token": token})
    assert elsewhere.json()["code"] == "invalid_next_token"


@pytest.mark.parametrize(("endpoint", "limit"), [("path/", 10), ("", 50), ("history/", 50)])
def test_max_results_out_of_range_is_a_400(admin_client, admin, endpoint, limit):
    make(admin, "/svc/a")
    base = {"path/": {"path": "/svc"}, "": {}, "history/": {"name": "/svc/a"}}[endpoint]
    for bad in (0, limit + 1, "ten"):
        response = admin_client.get(f"{API}{endpoint}", {**base, "max_results": bad})
        assert response.status_code == 400
        assert response.json()["detail"].startswith("max_results:")


def test_a_bad_path_is_a_400(admin_client):
    response = admin_client.get(f"{API}path/", {"path": "svc"})
    assert response.status_code == 400 and "begin with" in response.json()["detail"]


# --- Describe -------------------------------------------------------------------------------


def test_describe_shows_metadata_never_values(admin_client, admin, secret):
    make(admin, "/app/url", "https://a", description="url")
    body = admin_client.get(API).json()
    assert body["next_token"] is None
    assert [p["name"] for p in body["results"]] == ["/app/db/password", "/app/url"]
    first = body["results"][0]
    assert "value" not in first and first["key_id"] == "alias/aws/ssm"
    assert first["arn"].endswith(":parameter/app/db/password")
    assert {"last_modified_date", "last_modified_user", "tier", "version", "data_type"} <= set(
        first
    )


def test_describe_translates_its_query_to_parameter_filters(admin_client, admin, secret):
    make(admin, "/app/url", "u", tags={"Env": "dev", "Team": "web"})
    make(admin, "/app/deep/flag", "f", tags={"Env": "prod"})
    make(admin, "/top", "t", tier="Advanced")
    services.parameter_label(principal=admin, name="/top", labels=["live"])

    def names(**query):
        response = admin_client.get(API, query)
        assert response.status_code == 200, response.json()
        return [p["name"] for p in response.json()["results"]]

    assert names(name_contains="deep") == ["/app/deep/flag"]
    assert names(name_begins_with="/app/d") == ["/app/db/password", "/app/deep/flag"]
    assert names(path="/app") == ["/app/url"]
    assert names(path="/app", recursive="true") == [
        "/app/db/password",
        "/app/deep/flag",
        "/app/url",
    ]
    assert names(type="SecureString") == ["/app/db/password"]
    assert names(type=["String", "SecureString"], path="/app") == ["/app/url"]
    assert names(tier="Advanced") == ["/top"]
    assert names(label="live") == ["/top"]
    assert names(tag="Env") == ["/app/deep/flag", "/app/url"]
    assert names(tag="Env=dev") == ["/app/url"]
    assert names(tag=["Env=dev", "Team"]) == ["/app/url"]
    aws = json.dumps([{"Key": "tag:Env", "Option": "BeginsWith", "Values": ["pro"]}])
    assert names(parameter_filters=aws) == ["/app/deep/flag"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"parameter_filters": '[{"Key": "Color", "Values": ["red"]}]'}, "invalid_filter_key"),
        (
            {"parameter_filters": '[{"Key": "Label", "Option": "BeginsWith", "Values": ["l"]}]'},
            "invalid_filter_option",
        ),
        ({"parameter_filters": "not json"}, "validation_error"),
        ({"type": "Text"}, "validation_error"),
        ({"tag": "=dev"}, "validation_error"),
        ({"colour": "red"}, "validation_error"),
        ({"path": "no-slash"}, "validation_error"),
    ],
)
def test_a_bad_describe_filter_is_a_400(admin_client, query, code):
    response = admin_client.get(API, query)
    assert response.status_code == 400
    assert response.json()["code"] == code and response.json()["detail"]


def test_describe_pages_with_next_token(admin_client, admin):
    for number in range(7):
        make(admin, f"/p/{number}")
    first = admin_client.get(API, {"max_results": 5}).json()
    assert len(first["results"]) == 5 and first["next_token"]
    rest = admin_client.get(API, {"max_results": 5, "next_token": first["next_token"]}).json()
    assert [p["name"] for p in rest["results"]] == ["/p/5", "/p/6"]
    assert rest["next_token"] is None


# --- History, delete, labels, tags ----------------------------------------------------------


def test_history_lists_versions_with_labels_and_writers(admin_client, admin, secret):
    services.parameter_put(principal=admin, name="/app/db/password", value="s3", overwrite=True)
    services.parameter_label(principal=admin, name="/app/db/password", labels=["old"], version=1)
    response = admin_client.get(f"{API}history/", {"name": "/app/db/password", "decrypt": "true"})
    versions = response.json()["parameters"]
    assert [(v["version"], v["value"], v["labels"]) for v in versions] == [
        (1, "hunter2", ["old"]),
        (2, "s3", []),
    ]
    assert versions[0]["last_modified_user"].endswith(":user/ada")
    assert {"policies", "tier", "description", "allowed_pattern", "key_id"} <= set(versions[0])
    assert response["Cache-Control"] == "no-store"
    paged = admin_client.get(f"{API}history/", {"name": "/app/db/password", "max_results": 1})
    assert paged.json()["next_token"] and len(paged.json()["parameters"]) == 1


def test_delete_one_then_it_is_gone(admin_client, admin):
    make(admin, "/app/x")
    response = admin_client.delete(f"{API}?name=/app/x")
    assert response.json() == {"deleted": ["/app/x"], "invalid_parameters": []}
    again = admin_client.delete(f"{API}?name=/app/x")
    assert again.status_code == 404 and again.json()["code"] == "parameter_not_found"


def test_delete_many_reports_unknown_names(admin_client, admin):
    make(admin, "/app/x")
    make(admin, "/app/y")
    response = admin_client.post(
        f"{API}delete/", {"names": ["/app/x", "/app/y", "/app/z"]}, content_type="application/json"
    )
    assert response.json() == {"deleted": ["/app/x", "/app/y"], "invalid_parameters": ["/app/z"]}
    empty = admin_client.post(f"{API}delete/", {"names": []}, content_type="application/json")
    assert empty.status_code == 400 and "between 1 and 10" in empty.json()["detail"]


def test_labels_are_attached_and_removed(admin_client, admin):
    make(admin, "/app/x")
    make(admin, "/app/x", "v2", overwrite=True)
    url = f"{API}labels/"
    labelled = admin_client.post(
        url,
        {"name": "/app/x", "version": 1, "labels": ["prod", "1bad", "aws-no"]},
        content_type="application/json",
    )
    assert labelled.json() == {"invalid_labels": ["1bad", "aws-no"], "version": 1}
    newest = admin_client.post(
        url, {"name": "/app/x", "labels": ["beta"]}, content_type="application/json"
    )
    assert newest.json() == {"invalid_labels": [], "version": 2}
    removed = admin_client.post(
        f"{url}remove/",
        {"name": "/app/x", "version": 1, "labels": ["prod", "beta"]},
        content_type="application/json",
    )
    assert removed.json() == {"removed_labels": ["prod"], "invalid_labels": ["beta"]}
    too_long = admin_client.post(
        url, {"name": "/app/x", "labels": ["l" * 101]}, content_type="application/json"
    )
    assert too_long.status_code == 400 and "longer than 100" in too_long.json()["detail"]
    no_version = admin_client.post(
        url, {"name": "/app/x", "version": 9, "labels": ["x"]}, content_type="application/json"
    )
    assert no_version.status_code == 404


def test_tags_are_listed_added_and_removed(admin_client, admin):
    make(admin, "/app/x", tags={"Env": "dev"})
    url = f"{API}tags/?name=/app/x"
    assert admin_client.get(url).json() == {"name": "/app/x", "tags": {"Env": "dev"}}
    added = admin_client.post(
        url, {"tags": [{"Key": "Team", "Value": "web"}]}, content_type="application/json"
    )
    assert added.json()["tags"] == {"Env": "dev", "Team": "web"}
    removed = admin_client.delete(f"{url}&key=Env&key=Nope")
    assert removed.json()["tags"] == {"Team": "web"}
    reserved = admin_client.post(url, {"tags": {"aws:x": "1"}}, content_type="application/json")
    assert reserved.status_code == 400
    missing = admin_client.get(f"{API}tags/?name=/nope")
    assert missing.status_code == 404


# --- Access keys and lean reads -------------------------------------------------------------


def test_an_access_key_reads_a_value_and_a_path(client, bearer, admin, secret):
    value = client.get(
        f"{API}value/", {"name": "/app/db/password", "decrypt": "true"}, headers=bearer
    )
    assert value.json()["value"] == "hunter2"
    event = AuditEvent.objects.get(action="kms:Decrypt")
    assert "access-key" in event.principal and "hunter2" not in json.dumps(event.params)
    page = client.get(f"{API}path/", {"path": "/app", "recursive": "true"}, headers=bearer)
    assert [p["name"] for p in page.json()["parameters"]] == ["/app/db/password"]


def _queries(client, url, query, headers):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, query, headers=headers).status_code == 200
    return len(captured)


def test_a_path_read_costs_the_same_queries_for_two_or_ten_parameters(client, bearer, admin):
    for number in range(2):
        make(admin, f"/few/{number}")
    for number in range(10):
        make(admin, f"/many/{number}")
    # Warm what a running process keeps (the key service's data-key lookups) first.
    _queries(client, f"{API}path/", {"path": "/few"}, bearer)
    few = _queries(client, f"{API}path/", {"path": "/few"}, bearer)
    many = _queries(client, f"{API}path/", {"path": "/many"}, bearer)
    assert few == many


def test_a_value_read_is_lean(client, bearer, admin):
    make(admin, "/app/x")
    # Authentication (key, last use), the parameter and its version.
    assert _queries(client, f"{API}value/", {"name": "/app/x"}, bearer) <= 4
