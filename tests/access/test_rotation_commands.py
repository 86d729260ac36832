"""`rotatemasterkey` and `rotatekey`: rotation from the command line, with reads continuing."""

import base64
import os
from dataclasses import replace
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from access import kms, reencrypt, services
from access.authorization import Principal
from access.models import DataKey
from audit.models import AuditEvent
from bosun.lib import crypto

pytestmark = pytest.mark.django_db

ROW = {"parameter": "/app/db/password", "version": "1"}


@pytest.fixture
def master_key_file(settings, tmp_path):
    key_file = tmp_path / "master.key"
    key_file.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    settings.BOSUN = replace(settings.BOSUN, master_key_file=key_file)
    kms._master_file.cache_clear()
    kms._plaintext_data_key.cache_clear()
    yield key_file
    kms._master_file.cache_clear()
    kms._plaintext_data_key.cache_clear()


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_rotating_the_master_key_rewraps_every_data_key_and_values_still_open(master_key_file):
    first = kms.key_create(description="one")
    second = kms.key_create(description="two")
    kms.key_rotate(key=second)
    sealed = kms.value_encrypt(key=second, plaintext=b"still readable", context=ROW)

    output = run("rotatemasterkey")

    new_id = output.split("New master key: ")[1].split()[0]
    assert "Data keys re-wrapped: 3" in output
    assert {
        crypto.wrapped_key_master_id(w) for w in DataKey.objects.values_list("wrapped", flat=True)
    } == {new_id}
    kms._plaintext_data_key.cache_clear()
    assert kms.value_decrypt(blob=sealed, context=ROW) == b"still readable"
    assert (
        kms.value_decrypt(
            blob=kms.value_encrypt(key=first, plaintext=b"new write", context=ROW), context=ROW
        )
        == b"new write"
    )
    event = AuditEvent.objects.get(action="kms:RotateMasterKey")
    assert (event.principal, event.face, event.outcome) == ("system", "cli", "success")
    assert event.params == {"MasterKeyId": new_id, "DataKeysRewrapped": 3}


def test_rotating_a_key_by_alias_adds_a_generation_for_new_writes_and_old_values_open(
    master_key_file,
):
    key = kms.default_key()
    old = kms.value_encrypt(key=key, plaintext=b"before", context=ROW)

    output = run("rotatekey", "--key", "alias/aws/ssm")

    assert output.startswith(f"Key {key.key_id} now writes with generation 2\n")
    assert "re-encrypted by a worker in the background" in output
    new = kms.value_encrypt(key=key, plaintext=b"after", context=ROW)
    assert crypto.peek_key_id(new) == f"{key.key_id}/2"
    assert kms.value_decrypt(blob=old, context=ROW) == b"before"
    assert kms.value_decrypt(blob=new, context=ROW) == b"after"
    event = AuditEvent.objects.get(action="kms:RotateKeyOnDemand")
    assert (event.principal, event.face, event.resources) == ("system", "cli", [kms.key_arn(key)])


def test_rotating_a_key_by_id_works_and_an_unknown_id_is_refused_by_name(master_key_file):
    key = kms.key_create(description="named")
    assert "generation 2" in run("rotatekey", "--key", key.key_id)
    with pytest.raises(CommandError, match="Key 'no-such-key' does not exist"):
        run("rotatekey", "--key", "no-such-key")
    assert not AuditEvent.objects.filter(params_json__contains="no-such-key").exists()


def test_rotating_with_wait_reencrypts_stored_secrets_under_the_new_generation(
    master_key_file, operator_user
):
    key, secret = services.access_key_create(
        principal=Principal(user=operator_user), user=operator_user
    )
    assert crypto.peek_key_id(bytes(key.secret_ciphertext)).endswith("/1")

    output = run("rotatekey", "--key", "alias/aws/ssm", "--wait")

    assert "Re-encrypted 1 stored values" in output
    key.refresh_from_db()
    assert crypto.peek_key_id(bytes(key.secret_ciphertext)).endswith("/2")
    assert services.access_key_secret(key) == secret
    assert reencrypt.reencrypt_key(key=kms.default_key()) == 0  # nothing left to re-seal
