import pytest

from bosun.lib import health

pytestmark = pytest.mark.django_db


def test_healthz_reports_every_store_and_is_open_to_load_balancers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "channel_layer", "broker"}
    assert all(check["ok"] for check in body["checks"].values())
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_is_503_when_a_store_is_down(client, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "bosun.lib.sqlite_channel_layer.SQLiteChannelLayer",
            "CONFIG": {"path": "/nonexistent/dir/channels.sqlite3"},
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["channel_layer"]["ok"] is False
    assert body["checks"]["channel_layer"]["detail"].startswith("OperationalError")
    assert body["checks"]["database"]["ok"] is True


def test_a_failed_check_reports_the_error_class_and_first_line_only():
    def probe():
        raise ConnectionError("refused\nsecret detail on line two")

    result = health._timed(probe)
    assert result.ok is False
    assert result.detail == "ConnectionError: refused"
