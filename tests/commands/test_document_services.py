"""Writing documents: create, versions, the default version, delete; built-ins; who may."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from commands.documents.builtin import (
    BUILTIN_DOCUMENTS,
    REFRESH_HOST_FACTS,
    RUN_POWERSHELL_SCRIPT,
    RUN_SHELL_SCRIPT,
    builtin_documents_sync,
)
from commands.documents.content import content_hash
from commands.exceptions import (
    CommandsValidationError,
    DocumentAlreadyExists,
    DocumentVersionLimitExceeded,
    DuplicateDocumentContent,
    DuplicateDocumentVersionName,
    InvalidDocument,
    InvalidDocumentContent,
    InvalidDocumentOperation,
    InvalidDocumentVersion,
)
from commands.models import Document, DocumentVersion
from commands.scope import document_arn
from commands.selectors import document_version_get, document_versions
from commands.services.documents import (
    document_create,
    document_default_version_set,
    document_delete,
    document_update,
)
from tests.factories import user_with_policy

pytestmark = pytest.mark.django_db


def content(text: str = "hello") -> str:
    return json.dumps(
        {
            "schemaVersion": "2.2",
            "description": f"Say {text}.",
            "mainSteps": [
                {
                    "action": "aws:runShellScript",
                    "name": "say",
                    "inputs": {"runCommand": [f"echo {text}"]},
                }
            ],
        }
    )


YAML_CONTENT = """\
schemaVersion: "2.2"
mainSteps:
  - action: aws:runShellScript
    name: say
    inputs:
      runCommand: [echo from yaml]
"""


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def doc(admin) -> DocumentVersion:
    return document_create(principal=admin, name="deploy-app", content=content("v1"))


def audited(action: str, outcome: str = "success") -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, outcome=outcome).order_by("sequence"))


def fresh(name: str = "deploy-app") -> Document:
    return Document.objects.get(name=name)


# --- Create ---------------------------------------------------------------------------------


def test_a_new_document_starts_at_version_1_default_and_latest(admin):
    version = document_create(
        principal=admin,
        name="deploy-app",
        content=content(),
        version_name="first",
        tags={"Team": "web"},
    )
    document = fresh()
    assert (version.version, version.version_name) == (1, "first")
    assert (document.default_version, document.latest_version) == (1, 1)
    assert not document.is_builtin and document.created_by == admin.user
    assert version.content_hash == content_hash(content())
    assert version.content_format == "JSON"
    assert version.description == "Say hello."
    assert version.schema_version == "2.2"
    assert version.platform_types == ["Linux", "MacOS"]
    assert version.created_by_arn.endswith(":user/ada")
    assert dict(document.tags.values_list("key", "value")) == {"Team": "web"}


def test_a_yaml_document_is_stored_as_written(admin):
    version = document_create(
        principal=admin, name="yaml-doc", content=YAML_CONTENT, content_format="YAML"
    )
    assert version.content == YAML_CONTENT
    assert version.content_format == "YAML"
    assert version.body["mainSteps"][0]["inputs"]["runCommand"] == ["echo from yaml"]


def test_creating_a_document_is_audited_with_its_hash_not_its_content(admin, doc):
    [event] = audited("ssm:CreateDocument")
    assert event.principal == "ada"
    assert event.resources == [document_arn("deploy-app")]
    assert event.params == {
        "Name": "deploy-app",
        "DocumentFormat": "JSON",
        "Hash": doc.content_hash,
    }


def test_a_second_document_of_the_same_name_is_refused(admin, doc):
    with pytest.raises(DocumentAlreadyExists):
        document_create(principal=admin, name="deploy-app", content=content("other"))
    assert DocumentVersion.objects.filter(document__name="deploy-app").count() == 1


def test_invalid_content_writes_nothing(admin):
    with pytest.raises(InvalidDocumentContent):
        document_create(principal=admin, name="broken", content="{")
    assert not Document.objects.filter(name="broken").exists()
    assert not audited("ssm:CreateDocument")


@pytest.mark.parametrize(
    "name",
    [
        "AWS-Mine",
        "aws-mine",
        "Aws-RunShellScript",
        "AWS-RunShellScript",
        "Bosun-Deploy",
        "BOSUN-deploy",
        "bosun-deploy",
        "amazon-thing",
        "AmazonLinuxPatch",
        "AMZN-x",
    ],
)
def test_names_of_what_aws_and_bosun_ship_are_reserved_in_any_case(admin, name):
    with pytest.raises(CommandsValidationError) as refused:
        document_create(principal=admin, name=name, content=content())
    assert refused.value.field == "name"
    assert "reserved" in refused.value.message


@pytest.mark.parametrize("name", ["ab", "has space", "slash/name", "x" * 129, ""])
def test_a_document_name_is_3_to_128_safe_characters(admin, name):
    with pytest.raises(CommandsValidationError) as refused:
        document_create(principal=admin, name=name, content=content())
    assert refused.value.field == "name"


def test_a_malformed_version_name_is_refused(admin):
    with pytest.raises(CommandsValidationError) as refused:
        document_create(principal=admin, name="named", content=content(), version_name="v 1")
    assert refused.value.field == "version_name"


# --- Versions -------------------------------------------------------------------------------


def test_an_update_adds_the_next_version_and_leaves_the_default(admin, doc):
    version = document_update(principal=admin, name="deploy-app", content=content("v2"))
    document = fresh()
    assert version.version == 2
    assert (document.default_version, document.latest_version) == (1, 2)
    assert document_version_get(principal=admin, name="deploy-app").version == 1
    assert document_version_get(principal=admin, name="deploy-app", version="$LATEST").version == 2
    [event] = audited("ssm:UpdateDocument")
    assert event.params == {"Name": "deploy-app", "DocumentVersion": "2"}


def test_an_update_may_switch_the_format(admin, doc):
    version = document_update(
        principal=admin, name="deploy-app", content=YAML_CONTENT, content_format="YAML"
    )
    assert version.content_format == "YAML"


def test_an_update_must_name_the_latest_version(admin, doc):
    document_update(principal=admin, name="deploy-app", content=content("v2"), document_version="1")
    with pytest.raises(InvalidDocumentVersion) as refused:
        document_update(
            principal=admin, name="deploy-app", content=content("v3"), document_version="1"
        )
    assert "not the latest version" in refused.value.message
    document_update(principal=admin, name="deploy-app", content=content("v3"), document_version="2")
    assert fresh().latest_version == 3


def test_an_update_with_the_latest_content_is_duplicate_content(admin, doc):
    with pytest.raises(DuplicateDocumentContent):
        document_update(principal=admin, name="deploy-app", content=content("v1"))
    assert fresh().latest_version == 1


def test_version_names_are_unique_within_a_document(admin, doc):
    document_update(principal=admin, name="deploy-app", content=content("v2"), version_name="r1")
    with pytest.raises(DuplicateDocumentVersionName):
        document_update(
            principal=admin, name="deploy-app", content=content("v3"), version_name="r1"
        )
    # Another document may use the same version name.
    document_create(principal=admin, name="other-doc", content=content(), version_name="r1")


def test_a_version_is_found_by_number_name_latest_or_default(admin, doc):
    document_update(principal=admin, name="deploy-app", content=content("v2"), version_name="r2")
    get = document_version_get
    assert get(principal=admin, name="deploy-app", version="r2").version == 2
    assert get(principal=admin, name="deploy-app", version="1").version == 1
    assert get(principal=admin, name="deploy-app", version="$DEFAULT").version == 1
    assert get(principal=admin, name="deploy-app", version="").version == 1
    with pytest.raises(InvalidDocumentVersion):
        get(principal=admin, name="deploy-app", version="9")
    with pytest.raises(InvalidDocumentVersion):
        get(principal=admin, name="deploy-app", version="r9")
    with pytest.raises(InvalidDocument):
        get(principal=admin, name="no-such-doc")


def test_the_version_list_is_newest_first(admin, doc):
    document_update(principal=admin, name="deploy-app", content=content("v2"))
    document_update(principal=admin, name="deploy-app", content=content("v3"))
    versions = document_versions(principal=admin, name="deploy-app")
    assert [v.version for v in versions] == [3, 2, 1]


def test_a_document_holds_at_most_1000_versions(admin, doc):
    Document.objects.filter(name="deploy-app").update(latest_version=1000)
    with pytest.raises(DocumentVersionLimitExceeded):
        document_update(
            principal=admin, name="deploy-app", content=content("v2"), document_version="1000"
        )


def test_updating_a_missing_document_is_invalid_document(admin):
    with pytest.raises(InvalidDocument):
        document_update(principal=admin, name="no-such-doc", content=content())


# --- The default version --------------------------------------------------------------------


def test_the_default_version_can_be_moved_to_any_version(admin, doc):
    document_update(principal=admin, name="deploy-app", content=content("v2"))
    chosen = document_default_version_set(principal=admin, name="deploy-app", document_version="2")
    assert chosen.version == 2 and fresh().default_version == 2
    document_default_version_set(principal=admin, name="deploy-app", document_version="1")
    assert document_version_get(principal=admin, name="deploy-app").version == 1
    document_default_version_set(principal=admin, name="deploy-app", document_version="$LATEST")
    assert fresh().default_version == 2
    events = audited("ssm:UpdateDocumentDefaultVersion")
    assert [e.params["DocumentVersion"] for e in events] == ["2", "1", "2"]


@pytest.mark.parametrize("version", ["3", "0", "-1", "latest", ""])
def test_the_default_cannot_be_a_version_that_does_not_exist(admin, doc, version):
    with pytest.raises(InvalidDocumentVersion):
        document_default_version_set(principal=admin, name="deploy-app", document_version=version)
    assert fresh().default_version == 1


# --- Delete ---------------------------------------------------------------------------------


def test_one_version_can_be_deleted_and_latest_steps_back(admin, doc):
    document_update(principal=admin, name="deploy-app", content=content("v2"))
    document_delete(principal=admin, name="deploy-app", document_version="2")
    document = fresh()
    assert list(document.versions.values_list("version", flat=True)) == [1]
    assert document.latest_version == 1
    [event] = audited("ssm:DeleteDocument")
    assert event.params == {"Name": "deploy-app", "DocumentVersion": "2"}


def test_a_version_can_be_deleted_by_its_name(admin, doc):
    document_update(principal=admin, name="deploy-app", content=content("v2"), version_name="r2")
    document_update(principal=admin, name="deploy-app", content=content("v3"))
    document_delete(principal=admin, name="deploy-app", version_name="r2")
    assert list(fresh().versions.values_list("version", flat=True)) == [3, 1]
    assert fresh().latest_version == 3
    with pytest.raises(InvalidDocumentVersion):
        document_delete(principal=admin, name="deploy-app", version_name="r2")


def test_the_default_version_is_never_deleted_alone(admin, doc):
    document_update(principal=admin, name="deploy-app", content=content("v2"))
    with pytest.raises(InvalidDocumentOperation):
        document_delete(principal=admin, name="deploy-app", document_version="1")
    document_default_version_set(principal=admin, name="deploy-app", document_version="2")
    with pytest.raises(InvalidDocumentOperation):
        document_delete(principal=admin, name="deploy-app", document_version="$DEFAULT")
    document_delete(principal=admin, name="deploy-app", document_version="1")
    assert list(fresh().versions.values_list("version", flat=True)) == [2]


def test_deleting_without_a_version_deletes_the_whole_document(admin, doc):
    document_update(principal=admin, name="deploy-app", content=content("v2"))
    document_delete(principal=admin, name="deploy-app")
    assert not Document.objects.filter(name="deploy-app").exists()
    assert not DocumentVersion.objects.filter(document__name="deploy-app").exists()
    [event] = audited("ssm:DeleteDocument")
    assert event.params == {"Name": "deploy-app", "DocumentVersion": None}
    with pytest.raises(InvalidDocument):
        document_delete(principal=admin, name="deploy-app")


def test_a_deleted_name_can_be_used_again(admin, doc):
    document_delete(principal=admin, name="deploy-app")
    again = document_create(principal=admin, name="deploy-app", content=content("again"))
    assert again.version == 1


# --- Built-ins ------------------------------------------------------------------------------


def test_the_built_in_documents_exist_after_migrate():
    builtins = Document.objects.filter(is_builtin=True)
    assert set(builtins.values_list("name", flat=True)) == {
        RUN_SHELL_SCRIPT,
        RUN_POWERSHELL_SCRIPT,
        REFRESH_HOST_FACTS,
    }
    for document in builtins:
        version = document.versions.get(version=document.default_version)
        assert json.loads(version.content) == BUILTIN_DOCUMENTS[document.name]
        assert version.content_hash == content_hash(version.content)


def test_aws_names_of_the_built_ins_resolve_to_bosuns(admin):
    assert document_version_get(principal=admin, name="AWS-RunShellScript").document.name == (
        RUN_SHELL_SCRIPT
    )
    assert document_version_get(principal=admin, name="AWS-RunPowerShellScript").document.name == (
        RUN_POWERSHELL_SCRIPT
    )


def test_the_shell_script_document_takes_commands_and_an_execution_timeout(admin):
    version = document_version_get(principal=admin, name=RUN_SHELL_SCRIPT)
    assert set(version.body["parameters"]) == {"commands", "workingDirectory", "executionTimeout"}
    assert version.platform_types == ["Linux", "MacOS"]


@pytest.mark.parametrize("name", [RUN_SHELL_SCRIPT, "AWS-RunShellScript", REFRESH_HOST_FACTS])
def test_built_ins_are_read_only(admin, name):
    with pytest.raises(InvalidDocumentOperation):
        document_update(principal=admin, name=name, content=content())
    with pytest.raises(InvalidDocumentOperation):
        document_delete(principal=admin, name=name)
    with pytest.raises(InvalidDocumentOperation):
        document_default_version_set(principal=admin, name=name, document_version="1")
    assert Document.objects.filter(name__in=[RUN_SHELL_SCRIPT, REFRESH_HOST_FACTS]).count() == 2


def test_syncing_unchanged_built_ins_adds_no_version():
    before = DocumentVersion.objects.filter(document__is_builtin=True).count()
    builtin_documents_sync()
    call_command("migrate", verbosity=0)
    assert DocumentVersion.objects.filter(document__is_builtin=True).count() == before


def test_a_built_in_changed_in_the_code_gets_a_new_default_version():
    document = Document.objects.get(name=RUN_SHELL_SCRIPT)
    # As if the stored default were an older release's text.
    document.versions.filter(version=document.default_version).update(content_hash="0" * 64)
    builtin_documents_sync()
    document.refresh_from_db()
    assert document.default_version == document.latest_version == 2
    newest = document.versions.get(version=2)
    assert newest.content_hash == content_hash(newest.content)


# --- Who may --------------------------------------------------------------------------------

TEAM_DOCUMENTS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ssm:CreateDocument",
                "ssm:UpdateDocument",
                "ssm:DeleteDocument",
                "ssm:GetDocument",
            ],
            "Resource": "arn:aws:ssm:*:*:document/team-*",
        }
    ],
}


@pytest.fixture
def outsider(outsider_user) -> Principal:
    return Principal(user=outsider_user)


@pytest.fixture
def team_author(db) -> Principal:
    return Principal(user=user_with_policy("tina", TEAM_DOCUMENTS))


def test_a_user_without_create_document_is_denied_and_the_denial_audited(outsider):
    with pytest.raises(AccessDenied) as refused:
        document_create(principal=outsider, name="sneaky", content=content())
    assert "ssm:CreateDocument" in refused.value.message
    assert not Document.objects.filter(name="sneaky").exists()
    [denial] = audited("ssm:CreateDocument", "denied")
    assert denial.principal == "oscar"
    assert denial.resources == [document_arn("sneaky")]


def test_the_name_is_checked_before_authorization(outsider):
    # A malformed name is refused as such and leaves no denial behind.
    with pytest.raises(CommandsValidationError):
        document_create(principal=outsider, name="x", content=content())
    assert not audited("ssm:CreateDocument", "denied")


def test_policy_resources_scope_which_documents_a_user_may_write(team_author, admin):
    document_create(principal=team_author, name="team-deploy", content=content())
    with pytest.raises(AccessDenied):
        document_create(principal=team_author, name="ops-deploy", content=content())
    document_update(principal=team_author, name="team-deploy", content=content("v2"))
    document_create(principal=admin, name="ops-deploy", content=content())
    with pytest.raises(AccessDenied):
        document_update(principal=team_author, name="ops-deploy", content=content("v2"))
    with pytest.raises(AccessDenied):
        document_delete(principal=team_author, name="ops-deploy")
    with pytest.raises(AccessDenied):
        document_default_version_set(
            principal=team_author, name="team-deploy", document_version="2"
        )
    with pytest.raises(AccessDenied):
        document_version_get(principal=team_author, name="ops-deploy")
    document_delete(principal=team_author, name="team-deploy")
    assert set(Document.objects.filter(is_builtin=False).values_list("name", flat=True)) == {
        "ops-deploy"
    }
    assert len(audited("ssm:UpdateDocument", "denied")) == 1
    assert len(audited("ssm:DeleteDocument", "denied")) == 1
