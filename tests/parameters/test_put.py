"""PutParameter: create, overwrite, what an overwrite keeps, tags, and SecureString storage."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from access import kms, reencrypt
from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib import crypto
from parameters import selectors, services
from parameters.models import Parameter, ParameterTag, ParameterVersion
from tests.factories import user_with_policy
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db

TAGS_AND_OVERWRITE = (
    "Invalid request: tags and overwrite can't be used together. To create a parameter with "
    "tags, please remove overwrite flag. To update tags for an existing parameter, please use "
    "AddTagsToResource or RemoveTagsFromResource."
)


def test_a_put_creates_version_one_and_says_so(put):
    result = put("/p/new", "v")
    assert (result.name, result.version, result.tier, result.created) == (
        "/p/new",
        1,
        "Standard",
        True,
    )
    parameter = Parameter.objects.get()
    assert (parameter.lookup, parameter.parent_path, parameter.version) == ("/p/new", "/p", 1)
    assert parameter.last_modified_user == "arn:aws:iam::000000000000:user/ada"


def test_writing_an_existing_name_without_overwrite_is_refused_and_changes_nothing(put, admin):
    put("/p/exists", "first")
    message = refused("ParameterAlreadyExists", lambda: put("/p/exists", "second"))
    assert message == (
        "The parameter already exists. To overwrite this value, set the overwrite option in the "
        "request to true."
    )
    assert selectors.parameter_get(principal=admin, name="/p/exists").value == "first"
    assert ParameterVersion.objects.count() == 1


def test_an_overwrite_writes_the_next_version(put):
    put("/p/over", "one")
    result = put("/p/over", "two", None, overwrite=True)
    assert (result.version, result.created) == (2, False)


def test_overwrite_on_a_new_name_creates_it(put):
    assert put("/p/fresh", "v", overwrite=True).created is True


def test_tags_together_with_overwrite_are_refused(put):
    message = refused(
        "ValidationException", lambda: put("/p/t", "v", overwrite=True, tags={"Env": "dev"})
    )
    assert message == TAGS_AND_OVERWRITE
    assert not Parameter.objects.exists()


def test_tags_given_at_creation_are_kept_in_either_form(put, admin):
    put("/p/tagged", "v", tags=[{"Key": "Env", "Value": "prod"}, {"Key": "Team", "Value": "a"}])
    put("/p/mapped", "v", tags={"Env": "dev"})
    assert selectors.parameter_tags(principal=admin, name="/p/tagged") == {
        "Env": "prod",
        "Team": "a",
    }
    assert selectors.parameter_tags(principal=admin, name="/p/mapped") == {"Env": "dev"}


def test_an_overwrite_keeps_every_setting_it_does_not_give(put):
    put(
        "/p/keep",
        "8080",
        description="the port",
        allowed_pattern=r"^\d+$",
        tier="Advanced",
        tags={"Env": "prod"},
    )
    put("/p/keep", "9090", None, overwrite=True)
    parameter = Parameter.objects.get()
    assert (parameter.description, parameter.allowed_pattern, parameter.tier, parameter.type) == (
        "the port",
        r"^\d+$",
        "Advanced",
        "String",
    )
    assert list(ParameterTag.objects.values_list("key", "value")) == [("Env", "prod")]
    newest = ParameterVersion.objects.get(version=2)
    assert (newest.description, newest.allowed_pattern, newest.tier) == (
        "the port",
        r"^\d+$",
        "Advanced",
    )


def test_an_overwrite_replaces_the_settings_it_gives(put):
    put("/p/change", "v", description="old")
    put("/p/change", "w", None, overwrite=True, description="new")
    assert Parameter.objects.get().description == "new"
    assert list(ParameterVersion.objects.values_list("description", flat=True)) == ["old", "new"]


def test_a_key_id_on_a_non_secure_string_is_refused(put):
    message = refused("ValidationException", lambda: put("/p/key", "v", key_id="alias/aws/ssm"))
    assert message == "KeyId is required for SecureString type parameter only."
    put("/p/key", "v")
    message = refused(
        "ValidationException",
        lambda: put("/p/key", "w", None, overwrite=True, key_id="alias/aws/ssm"),
    )
    assert message == "KeyId is required for SecureString type parameter only."


def test_turning_a_secure_string_into_a_string_drops_its_key(put, admin):
    put("/p/turn", "secret", "SecureString")
    put("/p/turn", "plain", "String", overwrite=True)
    parameter = Parameter.objects.get()
    assert (parameter.type, parameter.key_id) == ("String", "")
    assert selectors.parameter_get(principal=admin, name="/p/turn").value == "plain"


def test_a_write_is_audited_without_its_value(put):
    put("/p/audited", "value-not-in-the-trail")
    event = AuditEvent.objects.get(action="ssm:PutParameter")
    assert event.outcome == "success"
    assert event.resources == ["arn:aws:ssm:us-east-1:000000000000:parameter/p/audited"]
    assert event.params == {
        "name": "/p/audited",
        "type": "String",
        "version": 1,
        "tier": "Standard",
        "overwrite": False,
    }
    assert "value-not-in-the-trail" not in event.params_json


def test_a_writer_without_the_right_is_denied_and_the_denial_is_audited(put, outsider):
    message = refused("AccessDeniedException", lambda: put("/p/denied", "v", principal=outsider))
    assert message == (
        "User oscar is not authorized to perform ssm:PutParameter on resource "
        "arn:aws:ssm:us-east-1:000000000000:parameter/p/denied"
    )
    denial = AuditEvent.objects.get(action="ssm:PutParameter")
    assert (denial.outcome, denial.principal) == ("denied", "oscar")
    assert not Parameter.objects.exists()


# --- SecureString ---------------------------------------------------------------------------


def test_a_secure_string_is_stored_only_as_ciphertext(put, admin):
    put("/s/db", "hunter2-stored-sealed", "SecureString")
    row = ParameterVersion.objects.get()
    assert row.value == ""
    assert row.ciphertext is not None
    assert b"hunter2-stored-sealed" not in bytes(row.ciphertext)
    unread = selectors.parameter_get(principal=admin, name="/s/db")
    assert unread.value == base64.b64encode(bytes(row.ciphertext)).decode()
    assert unread.decrypted is False
    read = selectors.parameter_get(principal=admin, name="/s/db", with_decryption=True)
    assert (read.value, read.decrypted) == ("hunter2-stored-sealed", True)


def test_a_secure_string_uses_the_default_key_alias_unless_told(put):
    put("/s/default", "v", "SecureString")
    parameter = Parameter.objects.get()
    assert parameter.key_id == "alias/aws/ssm"
    blob = bytes(ParameterVersion.objects.get().ciphertext)
    assert kms.ciphertext_key(blob) == kms.default_key()


def test_an_alias_nobody_created_falls_back_to_the_default_key_as_chamber_expects(put, admin):
    put("/s/chamber", "v", "SecureString", key_id="alias/parameter_store_key")
    assert Parameter.objects.get().key_id == "alias/parameter_store_key"
    blob = bytes(ParameterVersion.objects.get().ciphertext)
    assert kms.ciphertext_key(blob) == kms.default_key()
    read = selectors.parameter_get(principal=admin, name="/s/chamber", with_decryption=True)
    assert read.value == "v"


def test_a_named_key_seals_the_value_when_asked_for(put, admin):
    key = kms.key_create(description="app", alias="alias/app")
    put("/s/app", "by-alias", "SecureString", key_id="alias/app")
    put("/s/by-id", "by-id", "SecureString", key_id=key.key_id)
    for row in ParameterVersion.objects.all():
        assert kms.ciphertext_key(bytes(row.ciphertext)) == key
    assert selectors.parameter_get(
        principal=admin, name="/s/by-id", with_decryption=True
    ).value == ("by-id")


def test_a_key_id_that_does_not_exist_is_an_invalid_key_id(put):
    message = refused(
        "InvalidKeyId",
        lambda: put("/s/nokey", "v", "SecureString", key_id="11111111-2222-3333-4444-555555555555"),
    )
    assert message == "Key '11111111-2222-3333-4444-555555555555' does not exist"
    assert not Parameter.objects.exists()


def test_sealing_with_a_named_key_needs_kms_encrypt_on_it(put):
    kms.key_create(description="locked", alias="alias/locked")
    writer = user_with_policy(
        "wendy",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "ssm:PutParameter", "Resource": "*"}],
        },
    )
    as_writer = Principal(user=writer)
    message = refused(
        "AccessDeniedException",
        lambda: put("/s/locked", "v", "SecureString", key_id="alias/locked", principal=as_writer),
    )
    assert message.startswith("User wendy is not authorized to perform kms:Encrypt on resource ")
    assert not Parameter.objects.exists()
    assert put("/s/default", "v", "SecureString", principal=as_writer).version == 1


def test_a_ciphertext_is_bound_to_its_parameter_and_version(put, admin):
    put("/s/one", "first-secret", "SecureString")
    put("/s/two", "second-secret", "SecureString")
    put("/s/one", "first-secret-v2", None, overwrite=True)
    one_v1 = ParameterVersion.objects.get(parameter__name="/s/one", version=1)
    one_v2 = ParameterVersion.objects.get(parameter__name="/s/one", version=2)
    two_v1 = ParameterVersion.objects.get(parameter__name="/s/two", version=1)
    blobs = {row.pk: bytes(row.ciphertext) for row in (one_v1, one_v2, two_v1)}
    ParameterVersion.objects.filter(pk=one_v1.pk).update(ciphertext=blobs[two_v1.pk])
    ParameterVersion.objects.filter(pk=one_v2.pk).update(ciphertext=blobs[one_v1.pk])
    with pytest.raises(crypto.DecryptionError):
        selectors.parameter_get(principal=admin, name="/s/one:1", with_decryption=True)
    with pytest.raises(crypto.DecryptionError):
        selectors.parameter_get(principal=admin, name="/s/one", with_decryption=True)
    assert selectors.parameter_get(principal=admin, name="/s/two", with_decryption=True).value == (
        "second-secret"
    )


def test_a_decryption_is_audited_naming_the_parameter(put, admin):
    put("/s/audited", "v", "SecureString")
    selectors.parameter_get(principal=admin, name="/s/audited")
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()
    selectors.parameter_get(principal=admin, name="/s/audited", with_decryption=True)
    event = AuditEvent.objects.get(action="kms:Decrypt")
    assert event.outcome == "success"
    assert event.principal == "ada"
    assert event.resources == [
        kms.key_arn(kms.default_key()),
        "arn:aws:ssm:us-east-1:000000000000:parameter/s/audited",
    ]


def test_values_stay_readable_after_a_key_rotation_and_re_encryption(put, admin):
    put("/s/rot/a", "alpha", "SecureString")
    put("/s/rot/a", "alpha-2", None, overwrite=True)
    put("/s/rot/b", "beta", "SecureString")
    key = kms.default_key()
    kms.key_rotate(key=key)
    put("/s/rot/c", "gamma", "SecureString")
    assert reencrypt.reencrypt_key(key=key) == 3
    generations = {
        crypto.peek_key_id(bytes(blob)).rpartition("/")[2]
        for blob in ParameterVersion.objects.values_list("ciphertext", flat=True)
    }
    assert generations == {"2"}
    expected = {
        "/s/rot/a:1": "alpha",
        "/s/rot/a": "alpha-2",
        "/s/rot/b": "beta",
        "/s/rot/c": "gamma",
    }
    for name, value in expected.items():
        read = selectors.parameter_get(principal=admin, name=name, with_decryption=True)
        assert read.value == value


def test_values_stay_readable_after_a_master_key_rotation(put, admin, settings, tmp_path):
    key_file = tmp_path / "master.key"
    key_file.write_text(base64.urlsafe_b64encode(b"k" * 32).decode() + "\n")
    settings.BOSUN = replace(settings.BOSUN, master_key_file=key_file)
    kms._master_file.cache_clear()
    kms._plaintext_data_key.cache_clear()
    custom = kms.key_create(description="custom", alias="alias/custom")
    put("/s/master/a", "alpha", "SecureString")
    put("/s/master/b", "beta", "SecureString", key_id="alias/custom")
    assert custom.data_keys.count() == 1

    kms.master_key_rotate()
    kms._plaintext_data_key.cache_clear()

    for name, value in {"/s/master/a": "alpha", "/s/master/b": "beta"}.items():
        read = selectors.parameter_get(principal=admin, name=name, with_decryption=True)
        assert read.value == value
    put("/s/master/a", "alpha-2", None, overwrite=True)
    read = selectors.parameter_get(principal=admin, name="/s/master/a", with_decryption=True)
    assert read.value == "alpha-2"


def test_put_result_and_audit_name_the_parameter_as_it_was_created(put):
    put("toplevel", "v")
    put("/toplevel", "w", None, overwrite=True)
    events = AuditEvent.objects.filter(action="ssm:PutParameter").order_by("sequence")
    assert [json.loads(e.params_json)["name"] for e in events] == ["toplevel", "toplevel"]


def test_services_reject_an_empty_tag_list_item(admin):
    message = refused(
        "ValidationException",
        lambda: services.parameter_put(
            principal=admin, name="/p/t", value="v", parameter_type="String", tags=[{"Value": "x"}]
        ),
    )
    assert message == 'Each tag is {"Key": ..., "Value": ...}.'


# --- Delete ---------------------------------------------------------------------------------


def test_a_deleted_parameter_is_gone_with_its_versions_labels_and_tags(put, admin):
    put("/del/a", "one", tags={"Env": "dev"})
    put("/del/a", "two", None, overwrite=True)
    services.parameter_label(principal=admin, name="/del/a", labels=["prod"])
    services.parameter_delete(principal=admin, name="/del/a")
    assert not Parameter.objects.exists()
    assert not ParameterVersion.objects.exists()
    assert not ParameterTag.objects.exists()
    event = AuditEvent.objects.get(action="ssm:DeleteParameter")
    assert (event.outcome, event.params) == ("success", {"name": "/del/a"})


def test_a_name_written_again_after_a_delete_starts_at_version_one(put, admin):
    put("/del/again", "one")
    put("/del/again", "two", None, overwrite=True)
    services.parameter_delete(principal=admin, name="/del/again")
    assert put("/del/again", "fresh").version == 1
    history = selectors.parameter_history(principal=admin, name="/del/again")
    assert [entry.value for entry in history.items] == ["fresh"]


def test_deleting_an_unknown_parameter_is_parameter_not_found(admin):
    message = refused(
        "ParameterNotFound", lambda: services.parameter_delete(principal=admin, name="/del/none")
    )
    assert message == "Parameter /del/none not found."


def test_deleting_several_returns_the_unknown_ones_as_invalid(put, admin):
    put("/del/x", "x")
    put("top", "t")
    result = services.parameters_delete(principal=admin, names=["/del/x", "/top", "/del/none"])
    assert (result.deleted, result.invalid) == (["/del/x", "top"], ["/del/none"])
    assert not Parameter.objects.exists()


def test_deleting_more_than_ten_at_once_is_refused(admin):
    message = refused(
        "ValidationException",
        lambda: services.parameters_delete(principal=admin, names=[f"/d{n}" for n in range(11)]),
    )
    assert message == "Give between 1 and 10 parameter names to delete."
