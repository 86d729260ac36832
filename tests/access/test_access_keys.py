"""Access keys: created once with their secret, stored encrypted, two per user, imported pairs."""

import json

import pytest
from django.core.management import CommandError, call_command

from access import services
from access.authorization import Principal
from access.exceptions import AccessKeyError
from access.models import AccessKey, ManagedPolicy
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SELF_SERVICE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "bosun:ManageOwnAccessKeys",
                "Resource": "arn:aws:iam::*:user/${aws:username}",
            }
        ],
    }
)


@pytest.fixture(autouse=True)
def operator_manages_own_keys(operator_user):
    policy = ManagedPolicy.objects.create(name="SelfServiceKeys", document=SELF_SERVICE)
    policy.users.add(operator_user)


def as_user(user) -> Principal:
    return Principal(user=user, face="api")


def test_a_new_key_has_an_aws_shaped_id_and_a_secret_kept_only_encrypted(operator_user):
    key, secret = services.access_key_create(principal=as_user(operator_user), user=operator_user)
    assert len(key.access_key_id) == 20 and key.access_key_id.startswith("BKIA")
    assert key.access_key_id.isupper() and len(secret) == 40
    assert secret.encode() not in bytes(key.secret_ciphertext)
    assert services.access_key_secret(key) == secret
    assert key.status == AccessKey.Status.ACTIVE


def test_the_secret_appears_in_no_audit_event(operator_user):
    _, secret = services.access_key_create(principal=as_user(operator_user), user=operator_user)
    for event in AuditEvent.objects.all():
        assert secret not in json.dumps(event.params) if event.params else True
    assert AuditEvent.objects.filter(action="bosun:CreateAccessKey").count() == 1


def test_a_user_may_hold_two_keys_and_rotation_is_create_then_delete(operator_user):
    me = as_user(operator_user)
    first, _ = services.access_key_create(principal=me, user=operator_user)
    services.access_key_create(principal=me, user=operator_user)
    with pytest.raises(AccessKeyError, match="already has 2 access keys"):
        services.access_key_create(principal=me, user=operator_user)
    services.access_key_set_status(principal=me, access_key=first, active=False)
    services.access_key_delete(principal=me, access_key=first)
    services.access_key_create(principal=me, user=operator_user)
    assert AccessKey.objects.filter(user=operator_user).count() == 2


def test_a_known_pair_can_be_imported_and_bad_ones_are_refused(operator_user):
    me = as_user(operator_user)
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    key, returned = services.access_key_create(
        principal=me, user=operator_user, access_key_id="AKIAIOSFODNN7EXAMPLE", secret=secret
    )
    assert returned == secret and services.access_key_secret(key) == secret
    with pytest.raises(AccessKeyError, match="20 upper-case"):
        services.access_key_create(
            principal=me, user=operator_user, access_key_id="short", secret=secret
        )
    with pytest.raises(AccessKeyError, match="both"):
        services.access_key_create(
            principal=me, user=operator_user, access_key_id="AKIAIOSFODNN7EXAMPL2"
        )


def test_another_users_keys_need_the_manage_access_keys_permission(operator_user, outsider_user):
    with pytest.raises(AccessDenied):
        services.access_key_create(principal=as_user(outsider_user), user=operator_user)
    denied = AuditEvent.objects.get(outcome="denied")
    assert denied.action == "bosun:ManageAccessKeys"
    assert not AccessKey.objects.exists()


def test_createaccesskey_prints_the_pair_as_json(capsys):
    UserFactory(username="ci-bot")
    call_command("createaccesskey", "--user", "ci-bot", "--json")
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"AccessKeyId", "SecretAccessKey"}
    key = AccessKey.objects.get(access_key_id=printed["AccessKeyId"])
    assert services.access_key_secret(key) == printed["SecretAccessKey"]


def test_createaccesskey_explains_an_unknown_user_in_one_line():
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("createaccesskey", "--user", "nobody", "--json")


def bearer(key_id: str, secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key_id}:{secret}"}


def test_the_api_accepts_an_active_key_as_a_bearer_pair(client, operator_user):
    key, secret = services.access_key_create(principal=as_user(operator_user), user=operator_user)
    response = client.get("/api/v1/me", **bearer(key.access_key_id, secret))
    assert response.status_code == 200
    assert response.json()["username"] == "otto"
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_ip == "127.0.0.1"


def test_a_key_deactivated_after_use_is_refused_at_once_and_on_every_face(client, operator_user):
    key, secret = services.access_key_create(principal=as_user(operator_user), user=operator_user)
    assert client.get("/api/v1/me", **bearer(key.access_key_id, secret)).status_code == 200
    services.access_key_set_status(principal=as_user(operator_user), access_key=key, active=False)
    assert client.get("/api/v1/me", **bearer(key.access_key_id, secret)).status_code == 401


def test_a_secret_that_is_not_ascii_is_a_401_not_a_crash(client, operator_user):
    key, _ = services.access_key_create(principal=as_user(operator_user), user=operator_user)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key.access_key_id}:s\u00e9cret"}
    assert client.get("/api/v1/me", **headers).status_code == 401


@pytest.mark.parametrize("problem", ["wrong secret", "inactive", "unknown id", "malformed"])
def test_a_bad_key_gets_401_with_one_message_and_is_audited(client, operator_user, problem):
    key, secret = services.access_key_create(principal=as_user(operator_user), user=operator_user)
    headers = bearer(key.access_key_id, secret)
    if problem == "wrong secret":
        headers = bearer(key.access_key_id, "x" * 40)
    elif problem == "inactive":
        services.access_key_set_status(
            principal=as_user(operator_user), access_key=key, active=False
        )
    elif problem == "unknown id":
        headers = bearer("BKIAAAAAAAAAAAAAAAAA", secret)
    else:
        headers = {"HTTP_AUTHORIZATION": "Bearer no-colon-here"}
    response = client.get("/api/v1/me", **headers)
    assert response.status_code == 401
    assert secret not in response.content.decode()
    if problem != "malformed":
        assert AuditEvent.objects.filter(action="bosun:Authenticate", outcome="denied").exists()
