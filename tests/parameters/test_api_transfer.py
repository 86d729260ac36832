"""The Parameter Store REST API's files and notices: export, import, policy notices."""

from __future__ import annotations

import json

import pytest

from parameters import selectors, services
from parameters.models import ParameterNotice

pytestmark = pytest.mark.django_db

API = "/api/v1/parameters/"


def import_(client, **data):
    return client.post(f"{API}import/", data, content_type="application/json")


def test_an_import_then_export_round_trips_as_json(admin_client, admin):
    content = json.dumps({"db/url": "postgres://db", "db/pool": 5, "name": "shop"})
    imported = import_(admin_client, path="/shop", content=content)
    assert imported.status_code == 200
    body = imported.json()
    assert body["failed"] == 0
    assert {(line["name"], line["outcome"], line["version"]) for line in body["results"]} == {
        ("/shop/db/url", "created", 1),
        ("/shop/db/pool", "created", 1),
        ("/shop/name", "created", 1),
    }
    exported = admin_client.get(f"{API}export/", {"path": "/shop", "format": "json"})
    assert exported["Content-Type"] == "application/json"
    assert exported["Content-Disposition"] == 'attachment; filename="shop.json"'
    assert exported["X-Bosun-Skipped"] == "0" and exported["X-Bosun-Exported"] == "3"
    assert json.loads(exported.content) == {
        "db/url": "postgres://db",
        "db/pool": "5",
        "name": "shop",
    }


def test_an_env_export_imports_back_elsewhere(admin_client, admin):
    services.parameter_put(
        principal=admin, name="/a/greeting", value='say "hi"\nbye', parameter_type="String"
    )
    exported = admin_client.get(f"{API}export/", {"path": "/a", "format": "env"})
    assert exported["Content-Type"].startswith("text/plain")
    text = exported.content.decode()
    assert text.startswith("GREETING=")
    imported = import_(admin_client, path="/b", content=text, format="env")
    assert imported.json()["results"][0]["name"] == "/b/GREETING"
    copied = selectors.parameter_get(principal=admin, name="/b/GREETING")
    assert copied.value == 'say "hi"\nbye'


def test_an_export_skips_secure_strings_unless_decrypted(admin_client, admin):
    services.parameter_put(principal=admin, name="/s/plain", value="p", parameter_type="String")
    services.parameter_put(
        principal=admin, name="/s/secret", value="hunter2", parameter_type="SecureString"
    )
    sealed = admin_client.get(f"{API}export/", {"path": "/s"})
    assert json.loads(sealed.content) == {"plain": "p"}
    assert sealed["X-Bosun-Skipped"] == "1" and "no-store" not in sealed.get("Cache-Control", "")
    opened = admin_client.get(f"{API}export/", {"path": "/s", "decrypt": "true"})
    assert json.loads(opened.content) == {"plain": "p", "secret": "hunter2"}
    assert opened["X-Bosun-Skipped"] == "0" and opened["Cache-Control"] == "no-store"


def test_a_bad_export_request_is_a_400(admin_client):
    bad_format = admin_client.get(f"{API}export/", {"path": "/s", "format": "xml"})
    assert bad_format.status_code == 400 and bad_format.json()["detail"].startswith("format:")
    bad_path = admin_client.get(f"{API}export/", {"path": "s"})
    assert bad_path.status_code == 400 and bad_path.json()["code"] == "validation_error"


def test_an_import_reports_each_line_and_a_bad_line_fails_alone(admin_client, admin):
    services.parameter_put(principal=admin, name="/shop/taken", value="x", parameter_type="String")
    content = "GOOD=1\ntaken=2\n"
    body = import_(admin_client, path="/shop", content=content, format="env").json()
    outcomes = {line["name"]: (line["outcome"], line["error"]) for line in body["results"]}
    assert outcomes["/shop/GOOD"] == ("created", "")
    assert outcomes["/shop/taken"][0] == "failed" and "already exists" in outcomes["/shop/taken"][1]
    assert body["failed"] == 1
    overwritten = import_(
        admin_client, path="/shop", content=content, format="env", overwrite=True
    ).json()
    assert {line["outcome"] for line in overwritten["results"]} == {"updated"}


def test_an_unreadable_import_file_is_a_400(admin_client):
    response = import_(admin_client, path="/shop", content="[1, 2]")
    assert response.status_code == 400 and "JSON object" in response.json()["detail"]
    bad_type = import_(admin_client, path="/shop", content="{}", type="Text")
    assert bad_type.status_code == 400 and bad_type.json()["detail"].startswith("type:")


def test_an_outsider_imports_nothing(outsider_client):
    body = import_(outsider_client, path="/shop", content='{"a": "1"}').json()
    assert body["failed"] == 1 and "not authorized" in body["results"][0]["error"]


def test_notices_are_newest_first_and_scoped(admin_client, client, outsider_user):
    ParameterNotice.objects.create(
        parameter_name="/app/a", kind="ExpirationNotification", message="expires soon", version=1
    )
    ParameterNotice.objects.create(parameter_name="/app/b", kind="Expiration", message="gone")
    body = admin_client.get(f"{API}notices/").json()
    assert [n["parameter_name"] for n in body["results"]] == ["/app/b", "/app/a"]
    assert set(body["results"][0]) == {"parameter_name", "kind", "message", "version", "created_at"}
    assert len(admin_client.get(f"{API}notices/", {"max_results": 1}).json()["results"]) == 1
    client.force_login(outsider_user)
    assert client.get(f"{API}notices/").json() == {"results": []}
