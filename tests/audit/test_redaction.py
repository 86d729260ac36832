import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

from audit.redaction import REDACTED, is_secret_key, redact

PLANTED = "planted-secret-4f1c9b"


@pytest.mark.parametrize(
    "key",
    [
        "Value",
        "value",
        "Password",
        "new_password",
        "SecretAccessKey",
        "client-secret",
        "X-Amz-Security-Token",
        "SessionToken",
        "ActivationCode",
        "PrivateKey",
        "Authorization",
        "otp",
    ],
)
def test_keys_naming_secrets_are_redacted_whatever_their_case(key):
    assert is_secret_key(key)
    assert redact({key: PLANTED}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["Name", "Type", "Overwrite", "KeyId", "Path", "Tier"])
def test_ordinary_keys_are_kept(key):
    assert redact({key: "kept"}) == {key: "kept"}


def test_secrets_are_redacted_at_any_depth_and_inside_lists():
    params = {
        "Parameters": [{"Name": "/db/password", "Value": PLANTED}],
        "Auth": {"Credentials": {"user": "u", "pass": "p"}, "token": [PLANTED]},
        "Count": 3,
    }
    assert redact(params) == {
        "Parameters": [{"Name": "/db/password", "Value": REDACTED}],
        "Auth": {"Credentials": REDACTED, "token": REDACTED},
        "Count": 3,
    }
    assert params["Parameters"][0]["Value"] == PLANTED, "redact() must not change its argument"


@pytest.mark.django_db
def test_a_planted_secret_never_reaches_the_database_nor_an_export(trail):
    trail(
        2,
        params={"Name": "/app/api-key", "Value": PLANTED, "Nested": [{"SecretAccessKey": PLANTED}]},
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_auditevent")
        stored = repr(cursor.fetchall())
    assert PLANTED not in stored
    assert "/app/api-key" in stored
    out = io.StringIO()
    call_command("audit", "export", stdout=out)
    assert PLANTED not in out.getvalue()
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["params"]["Value"] == REDACTED
