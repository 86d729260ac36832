"""`{{ssm:…}}` references resolved as the sender reads them; `{{ssm-secure:…}}` left alone."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from parameters import references
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db


@pytest.fixture
def values(put):
    put("/app/name", "bosun")
    put("/app/name", "bosun-2", None, overwrite=True)
    put("/app/hosts", "a,b,c", "StringList")
    put("/app/db/password", "hunter2", "SecureString")
    put("toplevel", "top")


def resolve(principal, text: str) -> str:
    return references.references_resolve(principal=principal, text=text)


def test_a_string_reference_is_replaced_by_its_value(values, admin):
    assert resolve(admin, "echo {{ssm:/app/name}}") == "echo bosun-2"


def test_whitespace_inside_the_braces_is_allowed(values, admin):
    assert resolve(admin, "echo {{ ssm:/app/name }}") == "echo bosun-2"


def test_a_string_list_reference_is_replaced_by_its_comma_separated_value(values, admin):
    assert resolve(admin, "for h in {{ssm:/app/hosts}}") == "for h in a,b,c"


def test_a_versioned_reference_reads_that_version(values, admin):
    assert resolve(admin, "{{ssm:/app/name:1}} then {{ssm:/app/name:2}}") == "bosun then bosun-2"


def test_a_top_level_reference_works_with_or_without_its_slash(values, admin):
    assert resolve(admin, "{{ssm:toplevel}} {{ssm:/toplevel}}") == "top top"


def test_text_without_references_is_returned_as_it_is(values, admin):
    assert resolve(admin, "echo {{ not a reference }} {ssm:/app/name}") == (
        "echo {{ not a reference }} {ssm:/app/name}"
    )


def test_a_secure_string_behind_ssm_is_refused_pointing_to_ssm_secure(values, admin):
    message = refused("ValidationException", lambda: resolve(admin, "{{ssm:/app/db/password}}"))
    assert message == (
        "/app/db/password is a SecureString: refer to it as {{ssm-secure:/app/db/password}} so "
        "its value is fetched by the agent and never stored with the command."
    )
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()


def test_an_ssm_secure_reference_is_left_untouched_for_the_agent(values, admin):
    text = "psql --password {{ssm-secure:/app/db/password}} {{ssm:/app/name}}"
    assert resolve(admin, text) == "psql --password {{ssm-secure:/app/db/password}} bosun-2"
    assert references.secure_references(text) == ["/app/db/password"]
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()


def test_a_missing_parameter_is_named_in_the_refusal(values, admin):
    message = refused("ValidationException", lambda: resolve(admin, "{{ssm:/app/missing}}"))
    assert message == (
        "The document refers to {{ssm:/app/missing}}, but parameter /app/missing does not exist."
    )


def test_a_missing_version_is_version_not_found(values, admin):
    refused("ParameterVersionNotFound", lambda: resolve(admin, "{{ssm:/app/name:7}}"))


def test_a_sender_may_only_embed_what_they_may_read(values, team_a_reader, outsider, put):
    put("/team/a/url", "https://a")
    assert resolve(team_a_reader, "{{ssm:/team/a/url}}") == "https://a"
    message = refused("AccessDeniedException", lambda: resolve(team_a_reader, "{{ssm:/app/name}}"))
    assert message.startswith("User tara is not authorized to perform ssm:GetParameter")
    refused("AccessDeniedException", lambda: resolve(outsider, "{{ssm:/app/missing}}"))


def test_references_are_listed_with_their_kind(values):
    found = references.references_in("{{ssm:/a}} {{ ssm-secure:/b }}")
    assert [(ref.kind, ref.name, ref.text) for ref in found] == [
        ("ssm", "/a", "{{ssm:/a}}"),
        ("ssm-secure", "/b", "{{ ssm-secure:/b }}"),
    ]
