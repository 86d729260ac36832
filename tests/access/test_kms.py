"""The key service: aliases, envelope encryption bound to its row, rotation."""

import base64
import json
import os
from dataclasses import replace

import pytest

from access import kms
from access.authorization import Principal
from access.models import DataKey, ManagedPolicy
from audit.models import AuditEvent
from bosun.lib import crypto
from bosun.lib.errors import AccessDenied

pytestmark = pytest.mark.django_db

ROW = {"parameter": "/app/db/password", "version": "1"}


def test_the_default_alias_and_unknown_aliases_resolve_to_one_default_key():
    default = kms.key_resolve(None)
    assert kms.key_resolve("alias/aws/ssm") == default
    assert kms.key_resolve("alias/chamber/never-created") == default
    assert kms.key_resolve(f"arn:aws:kms:us-east-1:000000000000:key/{default.key_id}") == default


def test_an_unknown_key_id_is_an_error_naming_it():
    with pytest.raises(kms.KeyNotFound, match="Key 'nope' does not exist"):
        kms.key_resolve("nope")


def test_a_value_opens_with_its_context_and_never_holds_the_plaintext():
    key = kms.key_create(description="app secrets", alias="alias/app")
    blob = kms.value_encrypt(key=key, plaintext=b"hunter2-planted-secret", context=ROW)
    assert b"hunter2-planted-secret" not in blob
    assert kms.value_decrypt(blob=blob, context=ROW) == b"hunter2-planted-secret"
    assert kms.ciphertext_key(blob) == key


def test_a_ciphertext_moved_to_another_row_fails_to_open():
    key = kms.default_key()
    blob = kms.value_encrypt(key=key, plaintext=b"secret", context=ROW)
    with pytest.raises(crypto.DecryptionError):
        kms.value_decrypt(blob=blob, context={**ROW, "parameter": "/app/other"})


def test_after_a_data_key_rotation_old_values_still_open_and_new_ones_use_the_new_key():
    key = kms.default_key()
    old = kms.value_encrypt(key=key, plaintext=b"before", context=ROW)
    kms.key_rotate(key=key)
    new = kms.value_encrypt(key=key, plaintext=b"after", context=ROW)
    assert crypto.peek_key_id(old).endswith("/1")
    assert crypto.peek_key_id(new).endswith("/2")
    assert kms.value_decrypt(blob=old, context=ROW) == b"before"
    assert kms.value_decrypt(blob=new, context=ROW) == b"after"


def test_a_master_key_rotation_rewraps_data_keys_and_reads_continue(settings, tmp_path):
    key_file = tmp_path / "master.key"
    key_file.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    settings.BOSUN = replace(settings.BOSUN, master_key_file=key_file)
    kms._master_file.cache_clear()
    kms._plaintext_data_key.cache_clear()
    key = kms.key_create(description="rotating")
    blob = kms.value_encrypt(key=key, plaintext=b"still readable", context=ROW)
    old_master = crypto.wrapped_key_master_id(DataKey.objects.get(key=key).wrapped)

    new_master = kms.master_key_rotate()
    kms._plaintext_data_key.cache_clear()

    assert new_master != old_master
    assert crypto.wrapped_key_master_id(DataKey.objects.get(key=key).wrapped) == new_master
    assert kms.value_decrypt(blob=blob, context=ROW) == b"still readable"


def test_a_person_opens_a_value_only_with_kms_decrypt_on_its_key_and_the_read_is_audited(
    operator_user, outsider_user
):
    key = kms.default_key()
    blob = kms.value_encrypt(key=key, plaintext=b"s3cret", context=ROW)
    ManagedPolicy.objects.create(
        name="DecryptDefault",
        document=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": kms.key_arn(key)}
                ],
            }
        ),
    ).users.add(operator_user)
    opened = kms.value_decrypt_for(
        principal=Principal(user=operator_user), blob=blob, context=ROW, resources=["param"]
    )
    assert opened == b"s3cret"
    read = AuditEvent.objects.get(action="kms:Decrypt", outcome="success")
    assert read.resources == [kms.key_arn(key), "param"]
    with pytest.raises(AccessDenied):
        kms.value_decrypt_for(principal=Principal(user=outsider_user), blob=blob, context=ROW)
    assert AuditEvent.objects.filter(action="kms:Decrypt", outcome="denied").count() == 1
