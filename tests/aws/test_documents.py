"""Documents on the AWS endpoint, driven by a real boto3 client (and the aws CLI) against a live
server: every operation's answer as AWS shapes it, and each modelled error with its text."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from django.conf import settings

from commands.documents.builtin import builtin_documents_sync
from tests.aws.conftest import cli_json
from tests.factories import UserFactory, user_with_policy


@pytest.fixture(autouse=True)
def builtins(transactional_db):
    builtin_documents_sync()


def _content(word: str = "hello", **changes: Any) -> str:
    document = {
        "schemaVersion": "2.2",
        "description": "Say something.",
        "parameters": {
            "who": {"type": "String", "default": "world", "description": "Who to greet."},
            "extra": {"type": "StringList", "description": "More lines."},
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "say",
                "inputs": {"runCommand": [f"echo {word} {{{{ who }}}}"]},
            }
        ],
        **changes,
    }
    return json.dumps(document, indent=2)


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- CreateDocument -------------------------------------------------------------------------


def test_create_document_answers_its_description(ssm):
    content = _content()
    made = ssm.create_document(
        Name="Greet",
        Content=content,
        DocumentType="Command",
        VersionName="first",
        Tags=[{"Key": "Team", "Value": "ops"}],
    )["DocumentDescription"]

    assert made["Name"] == "Greet"
    assert (made["Hash"], made["HashType"]) == (_sha256(content), "Sha256")
    assert made["Owner"] == settings.BOSUN.account_id
    assert isinstance(made["CreatedDate"], datetime)
    assert made["Status"] == "Active"
    assert (made["DocumentVersion"], made["LatestVersion"], made["DefaultVersion"]) == (
        "1",
        "1",
        "1",
    )
    assert made["VersionName"] == "first"
    assert made["Description"] == "Say something."
    assert made["DocumentType"] == "Command"
    assert made["SchemaVersion"] == "2.2"
    assert made["DocumentFormat"] == "JSON"
    assert set(made["PlatformTypes"]) == {"Linux", "MacOS"}
    assert made["Parameters"] == [
        {
            "Name": "who",
            "Type": "String",
            "Description": "Who to greet.",
            "DefaultValue": "world",
        },
        {"Name": "extra", "Type": "StringList", "Description": "More lines."},
    ]
    assert made["Tags"] == [{"Key": "Team", "Value": "ops"}]


def test_create_document_errors(ssm):
    ssm.create_document(Name="Greet", Content=_content())

    with pytest.raises(ssm.exceptions.DocumentAlreadyExists) as raised:
        ssm.create_document(Name="Greet", Content=_content("hi"))
    assert _error(raised) == ("DocumentAlreadyExists", "The specified document already exists.")

    with pytest.raises(ssm.exceptions.InvalidDocumentContent) as raised:
        ssm.create_document(Name="Broken", Content='{"schemaVersion": "2.2",')
    code, message = _error(raised)
    assert code == "InvalidDocumentContent"
    assert message.startswith("The JSON does not parse:") and "line 1" in message

    with pytest.raises(ssm.exceptions.InvalidDocumentSchemaVersion) as raised:
        ssm.create_document(Name="OldSchema", Content=_content(schemaVersion="1.2"))
    assert _error(raised)[0] == "InvalidDocumentSchemaVersion"

    with pytest.raises(ssm.exceptions.MaxDocumentSizeExceeded) as raised:
        ssm.create_document(Name="Huge", Content=_content(description="x" * 70000))
    code, message = _error(raised)
    assert code == "MaxDocumentSizeExceeded"
    assert "a Command document may be at most 65536" in message


def test_create_document_refuses_what_bosun_does_not_do(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.create_document(Name="AWS-Mine", Content=_content())
    code, message = _error(raised)
    assert code == "ValidationException"
    assert message.startswith("Document names starting with aws-, amazon, amzn, bosun-")

    with pytest.raises(ClientError) as raised:
        ssm.create_document(
            Name="Tagged",
            Content=_content(),
            Tags=[{"Key": "Team", "Value": "a"}, {"Key": "Team", "Value": "b"}],
        )
    assert _error(raised) == ("ValidationException", 'The tag key "Team" is given twice.')

    with pytest.raises(ClientError) as raised:
        ssm.create_document(Name="Auto", Content=_content(), DocumentType="Automation")
    assert _error(raised) == (
        "ValidationException",
        "DocumentType Automation is not supported by Bosun: it runs Command documents.",
    )

    with pytest.raises(ClientError) as raised:
        ssm.create_document(Name="Texty", Content=_content(), DocumentFormat="TEXT")
    assert _error(raised) == (
        "ValidationException",
        "DocumentFormat TEXT is not supported by Bosun: documents are JSON or YAML.",
    )

    with pytest.raises(ClientError) as raised:
        ssm.create_document(
            Name="Attached",
            Content=_content(),
            Attachments=[{"Key": "SourceUrl", "Values": ["https://example.com/a"]}],
        )
    assert _error(raised) == (
        "ValidationException",
        "Attachments is not supported by Bosun: Command documents carry no attachments.",
    )


def test_a_malformed_name_is_a_validation_exception_in_aws_words(ssm):
    with pytest.raises(ClientError) as raised:
        ssm.create_document(Name="a b", Content=_content())
    assert _error(raised) == (
        "ValidationException",
        "1 validation error detected: Value 'a b' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{3,128}$",
    )


def test_a_caller_without_permission_is_denied(client_for, ssm):
    ssm.create_document(Name="Greet", Content=_content())
    nobody = client_for(UserFactory(username="nobody"))

    with pytest.raises(ClientError) as raised:
        nobody.create_document(Name="Mine", Content=_content())
    code, message = _error(raised)
    assert code == "AccessDeniedException"
    assert message.startswith(
        "User nobody is not authorized to perform ssm:CreateDocument on resource arn:aws:ssm:"
    )
    assert message.endswith(":document/Mine")

    with pytest.raises(ClientError) as raised:
        nobody.get_document(Name="Greet")
    assert _error(raised)[0] == "AccessDeniedException"
    # Listing is scoped: the documents the caller may not list are left out.
    assert nobody.list_documents()["DocumentIdentifiers"] == []


def _region(client: Any) -> str:
    return client.meta.region_name


# --- GetDocument ----------------------------------------------------------------------------


def test_get_document_converts_between_json_and_yaml(ssm):
    content = _content()
    ssm.create_document(Name="Greet", Content=content, VersionName="first")

    got = ssm.get_document(Name="Greet")
    assert got["Name"] == "Greet"
    assert got["Content"] == content
    assert (got["DocumentFormat"], got["DocumentType"], got["Status"]) == (
        "JSON",
        "Command",
        "Active",
    )
    assert (got["DocumentVersion"], got["VersionName"]) == ("1", "first")
    assert isinstance(got["CreatedDate"], datetime)

    as_yaml = ssm.get_document(Name="Greet", DocumentFormat="YAML")
    assert as_yaml["DocumentFormat"] == "YAML"
    assert yaml.safe_load(as_yaml["Content"]) == json.loads(content)

    yaml_content = yaml.safe_dump(json.loads(_content("hi")), sort_keys=False)
    ssm.create_document(Name="GreetYaml", Content=yaml_content, DocumentFormat="YAML")
    # JSON unless asked otherwise, as AWS answers.
    as_json = ssm.get_document(Name="GreetYaml")
    assert as_json["DocumentFormat"] == "JSON"
    assert json.loads(as_json["Content"]) == yaml.safe_load(yaml_content)
    assert ssm.get_document(Name="GreetYaml", DocumentFormat="YAML")["Content"] == yaml_content


def test_get_document_by_version_number_or_name(ssm):
    ssm.create_document(Name="Greet", Content=_content(), VersionName="first")
    ssm.update_document(Name="Greet", Content=_content("hi"), VersionName="second")

    assert "echo hello" in ssm.get_document(Name="Greet")["Content"]  # the default
    assert "echo hi" in ssm.get_document(Name="Greet", DocumentVersion="$LATEST")["Content"]
    assert "echo hi" in ssm.get_document(Name="Greet", DocumentVersion="2")["Content"]
    by_name = ssm.get_document(Name="Greet", VersionName="second")
    assert (by_name["DocumentVersion"], by_name["VersionName"]) == ("2", "second")
    arn = f"arn:aws:ssm:{_region(ssm)}:{settings.BOSUN.account_id}:document/Greet"
    assert ssm.get_document(Name=arn)["Name"] == "Greet"


def test_get_document_errors(ssm):
    ssm.create_document(Name="Greet", Content=_content(), VersionName="first")

    with pytest.raises(ssm.exceptions.InvalidDocument) as raised:
        ssm.get_document(Name="Nothing")
    assert _error(raised) == ("InvalidDocument", "The document Nothing does not exist.")

    with pytest.raises(ssm.exceptions.InvalidDocumentVersion) as raised:
        ssm.get_document(Name="Greet", DocumentVersion="7")
    assert _error(raised) == ("InvalidDocumentVersion", "Greet has no version 7.")

    with pytest.raises(ssm.exceptions.InvalidDocumentVersion) as raised:
        ssm.get_document(Name="Greet", DocumentVersion="1", VersionName="other")
    assert _error(raised) == ("InvalidDocumentVersion", "Greet has no version 1 named other.")


def test_the_builtin_aws_run_shell_script_is_there(ssm):
    got = ssm.get_document(Name="AWS-RunShellScript")
    assert got["Name"] == "Bosun-RunShellScript"
    assert "aws:runShellScript" in got["Content"]
    described = ssm.describe_document(Name="AWS-RunShellScript")["Document"]
    assert described["Owner"] == "Amazon"
    assert [parameter["Name"] for parameter in described["Parameters"]] == [
        "commands",
        "workingDirectory",
        "executionTimeout",
    ]


# --- DescribeDocument, UpdateDocument, versions ---------------------------------------------


def test_describe_document(ssm):
    ssm.create_document(Name="Greet", Content=_content(), Tags=[{"Key": "Team", "Value": "ops"}])
    second = _content("hi")
    ssm.update_document(Name="Greet", Content=second, DocumentVersion="$LATEST")

    described = ssm.describe_document(Name="Greet")["Document"]
    assert (described["DocumentVersion"], described["LatestVersion"]) == ("1", "2")
    assert described["DefaultVersion"] == "1"
    assert described["Tags"] == [{"Key": "Team", "Value": "ops"}]
    latest = ssm.describe_document(Name="Greet", DocumentVersion="$LATEST")["Document"]
    assert (latest["DocumentVersion"], latest["Hash"]) == ("2", _sha256(second))
    assert "VersionName" not in latest

    with pytest.raises(ssm.exceptions.InvalidDocument) as raised:
        ssm.describe_document(Name="Nothing")
    assert _error(raised) == ("InvalidDocument", "The document Nothing does not exist.")


def test_update_document_answers_the_new_version(ssm):
    ssm.create_document(Name="Greet", Content=_content())
    yaml_content = yaml.safe_dump(json.loads(_content("hi")), sort_keys=False)

    updated = ssm.update_document(
        Name="Greet", Content=yaml_content, DocumentFormat="YAML", VersionName="v2"
    )["DocumentDescription"]

    assert (updated["DocumentVersion"], updated["LatestVersion"]) == ("2", "2")
    assert updated["DefaultVersion"] == "1"
    assert (updated["DocumentFormat"], updated["VersionName"]) == ("YAML", "v2")
    assert updated["Hash"] == _sha256(yaml_content)


def test_update_document_errors(ssm):
    ssm.create_document(Name="Greet", Content=_content())
    ssm.update_document(Name="Greet", Content=_content("hi"), VersionName="v2")

    with pytest.raises(ssm.exceptions.DuplicateDocumentContent) as raised:
        ssm.update_document(Name="Greet", Content=_content("hi"))
    assert _error(raised) == (
        "DuplicateDocumentContent",
        "The content of the association document matches another document. Change the "
        "content of the document and try again.",
    )

    with pytest.raises(ssm.exceptions.DuplicateDocumentVersionName) as raised:
        ssm.update_document(Name="Greet", Content=_content("hey"), VersionName="v2")
    assert _error(raised) == (
        "DuplicateDocumentVersionName",
        "The version name v2 is already used by a version of Greet.",
    )

    with pytest.raises(ssm.exceptions.InvalidDocumentVersion) as raised:
        ssm.update_document(Name="Greet", Content=_content("hey"), DocumentVersion="1")
    assert _error(raised) == (
        "InvalidDocumentVersion",
        "Version 1 is not the latest version of Greet (2); update from the latest version.",
    )

    with pytest.raises(ssm.exceptions.InvalidDocument) as raised:
        ssm.update_document(Name="Nothing", Content=_content())
    assert _error(raised) == ("InvalidDocument", "The specified document does not exist.")

    with pytest.raises(ssm.exceptions.InvalidDocumentOperation) as raised:
        ssm.update_document(Name="Bosun-RunShellScript", Content=_content())
    assert _error(raised) == (
        "InvalidDocumentOperation",
        "Bosun-RunShellScript ships with Bosun and is read-only; copy its content into a new "
        "document to change it.",
    )

    with pytest.raises(ssm.exceptions.InvalidDocumentContent) as raised:
        ssm.update_document(Name="Greet", Content="[1, 2]")
    assert _error(raised) == (
        "InvalidDocumentContent",
        "A document is an object (a mapping) at the top.",
    )


def test_default_version_and_version_list(ssm):
    ssm.create_document(Name="Greet", Content=_content())
    ssm.update_document(Name="Greet", Content=_content("hi"), VersionName="v2")

    answer = ssm.update_document_default_version(Name="Greet", DocumentVersion="2")
    assert answer["Description"] == {
        "Name": "Greet",
        "DefaultVersion": "2",
        "DefaultVersionName": "v2",
    }
    versions = ssm.list_document_versions(Name="Greet")["DocumentVersions"]
    assert [(v["DocumentVersion"], v["IsDefaultVersion"]) for v in versions] == [
        ("2", True),
        ("1", False),
    ]
    assert versions[0]["VersionName"] == "v2" and "VersionName" not in versions[1]
    assert all(v["Name"] == "Greet" and v["Status"] == "Active" for v in versions)
    assert all(v["DocumentFormat"] == "JSON" for v in versions)
    assert all(isinstance(v["CreatedDate"], datetime) for v in versions)

    page = ssm.list_document_versions(Name="Greet", MaxResults=1)
    assert len(page["DocumentVersions"]) == 1 and page["NextToken"]
    rest = ssm.list_document_versions(Name="Greet", MaxResults=1, NextToken=page["NextToken"])
    assert rest["DocumentVersions"][0]["DocumentVersion"] == "1"
    assert "NextToken" not in rest

    with pytest.raises(ssm.exceptions.InvalidDocumentVersion) as raised:
        ssm.update_document_default_version(Name="Greet", DocumentVersion="9")
    assert _error(raised) == (
        "InvalidDocumentVersion",
        "The document version is not valid or does not exist: 9.",
    )
    with pytest.raises(ssm.exceptions.InvalidDocument) as raised:
        ssm.update_document_default_version(Name="Nothing", DocumentVersion="1")
    assert _error(raised) == ("InvalidDocument", "The specified document does not exist.")
    with pytest.raises(ssm.exceptions.InvalidDocument) as raised:
        ssm.list_document_versions(Name="Nothing")
    assert _error(raised) == ("InvalidDocument", "The document Nothing does not exist.")


# --- DeleteDocument -------------------------------------------------------------------------


def test_delete_a_version_then_the_document(ssm):
    ssm.create_document(Name="Greet", Content=_content())
    ssm.update_document(Name="Greet", Content=_content("hi"), VersionName="v2")

    with pytest.raises(ssm.exceptions.InvalidDocumentOperation) as raised:
        ssm.delete_document(Name="Greet", DocumentVersion="1")
    assert _error(raised) == (
        "InvalidDocumentOperation",
        "The default version of a document cannot be deleted; make another version the "
        "default first, or delete the whole document.",
    )

    assert ssm.delete_document(Name="Greet", VersionName="v2")["ResponseMetadata"]
    assert ssm.describe_document(Name="Greet")["Document"]["LatestVersion"] == "1"
    ssm.delete_document(Name="Greet")

    with pytest.raises(ssm.exceptions.InvalidDocument):
        ssm.describe_document(Name="Greet")
    with pytest.raises(ssm.exceptions.InvalidDocument) as raised:
        ssm.delete_document(Name="Greet")
    assert _error(raised) == ("InvalidDocument", "The specified document does not exist.")
    with pytest.raises(ssm.exceptions.InvalidDocumentOperation):
        ssm.delete_document(Name="Bosun-RunShellScript")


# --- ListDocuments --------------------------------------------------------------------------


def test_list_documents_pages_through_every_document(ssm):
    for number in range(5):
        ssm.create_document(Name=f"Doc-{number}", Content=_content(str(number)))

    pages = list(
        ssm.get_paginator("list_documents").paginate(
            Filters=[{"Key": "Owner", "Values": ["Self"]}], PaginationConfig={"PageSize": 2}
        )
    )

    assert [len(page["DocumentIdentifiers"]) for page in pages] == [2, 2, 1]
    names = [item["Name"] for page in pages for item in page["DocumentIdentifiers"]]
    assert names == [f"Doc-{number}" for number in range(5)]
    first = pages[0]["DocumentIdentifiers"][0]
    assert first["Owner"] == settings.BOSUN.account_id
    assert (first["DocumentVersion"], first["DocumentType"]) == ("1", "Command")
    assert (first["SchemaVersion"], first["DocumentFormat"]) == ("2.2", "JSON")
    assert set(first["PlatformTypes"]) == {"Linux", "MacOS"}
    assert first["Tags"] == [] and isinstance(first["CreatedDate"], datetime)


def test_list_documents_filters(ssm):
    ssm.create_document(
        Name="Web-Deploy", Content=_content(), Tags=[{"Key": "Team", "Value": "web"}]
    )
    ssm.create_document(Name="Db-Backup", Content=_content(), Tags=[{"Key": "Team", "Value": "db"}])

    def names(**kwargs: Any) -> list[str]:
        return [d["Name"] for d in ssm.list_documents(**kwargs)["DocumentIdentifiers"]]

    assert names(Filters=[{"Key": "Owner", "Values": ["Self"]}]) == ["Db-Backup", "Web-Deploy"]
    assert "Bosun-RunShellScript" in names(Filters=[{"Key": "Owner", "Values": ["Amazon"]}])
    assert "Web-Deploy" not in names(Filters=[{"Key": "Owner", "Values": ["Amazon"]}])
    assert names(Filters=[{"Key": "Name", "Values": ["web-"]}]) == ["Web-Deploy"]
    assert names(Filters=[{"Key": "tag:Team", "Values": ["db"]}]) == ["Db-Backup"]
    assert names(Filters=[{"Key": "SearchKeyword", "Values": ["backup"]}]) == ["Db-Backup"]
    assert names(
        Filters=[
            {"Key": "Owner", "Values": ["Self"]},
            {"Key": "PlatformTypes", "Values": ["Linux"]},
            {"Key": "DocumentType", "Values": ["Command"]},
        ]
    ) == ["Db-Backup", "Web-Deploy"]
    assert names(Filters=[{"Key": "PlatformTypes", "Values": ["Windows"]}]) == [
        "Bosun-RefreshHostFacts",
        "Bosun-RunPowerShellScript",
    ]
    assert names(DocumentFilterList=[{"key": "Name", "value": "Deploy"}]) == ["Web-Deploy"]
    assert names(DocumentFilterList=[{"key": "Owner", "value": "Self"}]) == [
        "Db-Backup",
        "Web-Deploy",
    ]

    with pytest.raises(ssm.exceptions.InvalidFilterKey) as raised:
        ssm.list_documents(Filters=[{"Key": "Colour", "Values": ["red"]}])
    assert _error(raised)[0] == "InvalidFilterKey"
    with pytest.raises(ClientError) as raised:
        ssm.list_documents(
            DocumentFilterList=[{"key": "Owner", "value": "Self"}],
            Filters=[{"Key": "Owner", "Values": ["Self"]}],
        )
    assert _error(raised) == (
        "ValidationException",
        "You can use either DocumentFilterList or Filters in a single request, not both.",
    )
    with pytest.raises(ssm.exceptions.InvalidNextToken) as raised:
        ssm.list_documents(NextToken="forged")
    assert _error(raised) == ("InvalidNextToken", "The specified token is not valid.")


# --- Tags -----------------------------------------------------------------------------------


def test_documents_are_tagged(ssm):
    ssm.create_document(Name="Greet", Content=_content())

    ssm.add_tags_to_resource(
        ResourceType="Document",
        ResourceId="Greet",
        Tags=[{"Key": "Team", "Value": "ops"}, {"Key": "Env", "Value": "dev"}],
    )
    listed = ssm.list_tags_for_resource(ResourceType="Document", ResourceId="Greet")
    assert listed["TagList"] == [{"Key": "Env", "Value": "dev"}, {"Key": "Team", "Value": "ops"}]
    ssm.remove_tags_from_resource(ResourceType="Document", ResourceId="Greet", TagKeys=["Env"])
    listed = ssm.list_tags_for_resource(ResourceType="Document", ResourceId="Greet")
    assert listed["TagList"] == [{"Key": "Team", "Value": "ops"}]

    with pytest.raises(ssm.exceptions.InvalidResourceId) as raised:
        ssm.list_tags_for_resource(ResourceType="Document", ResourceId="Nothing")
    assert _error(raised) == (
        "InvalidResourceId",
        "The resource ID is not valid: there is no document Nothing.",
    )
    with pytest.raises(ssm.exceptions.InvalidResourceId) as raised:
        ssm.add_tags_to_resource(
            ResourceType="Document",
            ResourceId="AWS-RunShellScript",
            Tags=[{"Key": "Team", "Value": "ops"}],
        )
    assert _error(raised) == (
        "InvalidResourceId",
        "Bosun-RunShellScript ships with Bosun and is read-only; its tags cannot change.",
    )
    with pytest.raises(ssm.exceptions.TooManyTagsError) as raised:
        ssm.add_tags_to_resource(
            ResourceType="Document",
            ResourceId="Greet",
            Tags=[{"Key": f"k{n}", "Value": "v"} for n in range(50)],
        )
    assert _error(raised) == (
        "TooManyTagsError",
        "Greet would hold more than 50 tags; remove some first.",
    )


def test_tagging_a_document_needs_permission(client_for, ssm):
    ssm.create_document(Name="Greet", Content=_content())
    reader = client_for(
        user_with_policy(
            "reader",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "ssm:ListTagsForResource", "Resource": "*"}
                ],
            },
        )
    )
    assert (
        reader.list_tags_for_resource(ResourceType="Document", ResourceId="Greet")["TagList"] == []
    )
    with pytest.raises(ClientError) as raised:
        reader.add_tags_to_resource(
            ResourceType="Document", ResourceId="Greet", Tags=[{"Key": "A", "Value": "b"}]
        )
    assert _error(raised)[0] == "AccessDeniedException"


# --- The aws CLI ----------------------------------------------------------------------------


def test_the_aws_cli_creates_and_describes_a_document(aws_cli, tmp_path):
    path = tmp_path / "greet.json"
    path.write_text(_content())

    made = cli_json(
        aws_cli("ssm", "create-document", "--name", "Greet", "--content", f"file://{path}")
    )
    assert made["DocumentDescription"]["Status"] == "Active"
    described = cli_json(aws_cli("ssm", "describe-document", "--name", "Greet"))
    assert described["Document"]["Hash"] == _sha256(_content())
    listed = cli_json(aws_cli("ssm", "list-documents", "--filters", "Key=Owner,Values=Self"))
    assert [item["Name"] for item in listed["DocumentIdentifiers"]] == ["Greet"]

    failed = aws_cli("ssm", "get-document", "--name", "Nothing")
    assert failed.returncode == 255
    assert "(InvalidDocument)" in failed.stderr and "Nothing does not exist" in failed.stderr
