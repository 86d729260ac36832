"""Documents as AWS SSM operations, and the tagging of Document resources."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet

from bosun.lib.aws import errors
from bosun.lib.aws.registry import AwsCall, Tagging, operation, tagging
from commands import selectors
from commands.aws.common import (
    ACTIVE,
    BUILTIN_OWNER,
    COMMAND,
    HASH_TYPE,
    aws_page,
    document_name,
    listing,
    refuse_unsupported,
    tag_list,
)
from commands.documents.content import content_render
from commands.exceptions import InvalidDocumentVersion
from commands.models import (
    Document,
    DocumentFormat,
    DocumentVersion,
)
from commands.services.document_tags import document_tags, document_tags_add, document_tags_remove
from commands.services.documents import (
    document_create,
    document_default_version_set,
    document_delete,
    document_update,
)
from fleet.tags import tags_validated

# --- Documents ------------------------------------------------------------------------------

_UNSUPPORTED_DOCUMENT_MEMBERS = {
    "Requires": "Command documents require no other documents.",
    "Attachments": "Command documents carry no attachments.",
    "DisplayName": "documents are known by their name.",
    "TargetType": "a Command document runs on any managed node its targets reach.",
    "CloudProviders": "documents run on the nodes Bosun manages.",
}


def _owner(call: AwsCall, document: Document) -> str:
    return BUILTIN_OWNER if document.is_builtin else call.account_id


def _content_format(params: Mapping[str, Any]) -> str:
    wanted = params.get("DocumentFormat", DocumentFormat.JSON.value)
    if wanted not in DocumentFormat.values:
        raise errors.validation(
            f"DocumentFormat {wanted} is not supported by Bosun: documents are JSON or YAML."
        )
    return str(wanted)


def _parameters(version: DocumentVersion) -> list[dict[str, Any]]:
    declared = version.body.get("parameters") or {}
    shapes = []
    for name, definition in declared.items():
        shape = {
            "Name": name,
            "Type": definition.get("type", ""),
            "Description": definition.get("description", ""),
        }
        if "default" in definition:
            default = definition["default"]
            shape["DefaultValue"] = default if isinstance(default, str) else json.dumps(default)
        shapes.append(shape)
    return shapes


def _description(
    call: AwsCall, version: DocumentVersion, tags: Mapping[str, str]
) -> dict[str, Any]:
    """AWS's DocumentDescription of one version."""
    document = version.document
    shape: dict[str, Any] = {
        "Hash": version.content_hash,
        "HashType": HASH_TYPE,
        "Name": document.name,
        "Owner": _owner(call, document),
        "CreatedDate": document.created_at,
        "Status": ACTIVE,
        "DocumentVersion": str(version.version),
        "Description": version.description,
        "Parameters": _parameters(version),
        "PlatformTypes": list(version.platform_types),
        "DocumentType": document.document_type,
        "SchemaVersion": version.schema_version,
        # The version at hand exists, so the latest is at least it.
        "LatestVersion": str(max(document.latest_version, version.version)),
        "DefaultVersion": str(document.default_version),
        "DocumentFormat": version.content_format,
        "Tags": tag_list(tags),
    }
    if version.version_name:
        shape["VersionName"] = version.version_name
    return shape


def _stored_tags(document: Document) -> dict[str, str]:
    return {tag.key: tag.value for tag in document.tags.all()}


def _version(
    call: AwsCall, *, action: str, name_member: str = "Name", fresh: bool = False
) -> DocumentVersion:
    """The version DocumentVersion or VersionName names (the default one when neither)."""
    params = call.params
    number, version_name = params.get("DocumentVersion"), params.get("VersionName")
    version = selectors.document_version_get(
        principal=call.principal,
        name=document_name(params[name_member]),
        version=number or version_name,
        action=action,
    )
    if version_name and version.version_name != version_name:
        raise InvalidDocumentVersion(
            f"{version.document.name} has no version {number or ''} named {version_name}."
            if number
            else f"{version.document.name} has no version named {version_name}."
        )
    return version


@operation("CreateDocument")
def create_document(call: AwsCall) -> dict[str, Any]:
    p = call.params
    refuse_unsupported(p, _UNSUPPORTED_DOCUMENT_MEMBERS)
    if p.get("DocumentType", COMMAND) != COMMAND:
        raise errors.validation(
            f"DocumentType {p['DocumentType']} is not supported by Bosun: it runs Command "
            "documents."
        )
    tags = tags_validated(p.get("Tags", []))
    version = document_create(
        principal=call.principal,
        name=p["Name"],
        content=p["Content"],
        content_format=_content_format(p),
        version_name=p.get("VersionName", ""),
        tags=tags,
    )
    return {"DocumentDescription": _description(call, version, tags)}


@operation("GetDocument")
def get_document(call: AwsCall) -> dict[str, Any]:
    version = _version(call, action="ssm:GetDocument")
    wanted = _content_format(call.params)
    content = (
        version.content
        if wanted == version.content_format
        else content_render(version.body, wanted)
    )
    shape: dict[str, Any] = {
        "Name": version.document.name,
        "CreatedDate": version.created_at,
        "DocumentVersion": str(version.version),
        "Status": ACTIVE,
        "Content": content,
        "DocumentType": version.document.document_type,
        "DocumentFormat": wanted,
    }
    if version.version_name:
        shape["VersionName"] = version.version_name
    return shape


@operation("DescribeDocument")
def describe_document(call: AwsCall) -> dict[str, Any]:
    version = _version(call, action="ssm:DescribeDocument")
    return {"Document": _description(call, version, _stored_tags(version.document))}


@operation("UpdateDocument")
def update_document(call: AwsCall) -> dict[str, Any]:
    p = call.params
    refuse_unsupported(p, _UNSUPPORTED_DOCUMENT_MEMBERS)
    version = document_update(
        principal=call.principal,
        name=p["Name"],
        content=p["Content"],
        content_format=_content_format(p),
        document_version=p.get("DocumentVersion", selectors.LATEST),
        version_name=p.get("VersionName", ""),
    )
    return {"DocumentDescription": _description(call, version, _stored_tags(version.document))}


@operation("DeleteDocument")
def delete_document(call: AwsCall) -> dict[str, Any]:
    # Force deletes documents shared with other accounts or used by associations elsewhere;
    # Bosun has neither, so it changes nothing.
    p = call.params
    document_delete(
        principal=call.principal,
        name=p["Name"],
        document_version=p.get("DocumentVersion", ""),
        version_name=p.get("VersionName", ""),
    )
    return {}


# ListDocuments' filter keys (DocumentFilterList's and Filters'), and Owner's values.
_OWNERS = {
    "Self": "Self",
    "Private": "Self",
    "Amazon": "Bosun",
    "Public": "Bosun",
    "Bosun": "Bosun",
    "All": "",
}
_DOCUMENT_FILTER_KEYS = ("Name", "Owner", "PlatformTypes", "DocumentType", "SearchKeyword")


def _document_filters(call: AwsCall) -> list[tuple[str, list[str]]]:
    """(key, values) of either filter list: values of one key OR together, keys AND."""
    p = call.params
    if "DocumentFilterList" in p and "Filters" in p:
        raise errors.validation(
            "You can use either DocumentFilterList or Filters in a single request, not both."
        )
    if "DocumentFilterList" in p:
        pairs = [(item["key"], [item["value"]]) for item in p["DocumentFilterList"]]
    else:
        pairs = [
            (item.get("Key", ""), list(item.get("Values", []))) for item in p.get("Filters", [])
        ]
    for key, _ in pairs:
        if key not in _DOCUMENT_FILTER_KEYS and not key.startswith("tag:"):
            raise errors.AwsError(
                "InvalidFilterKey",
                f"The filter key {key!s:.128} is not valid: use Name, Owner, PlatformTypes, "
                "DocumentType, SearchKeyword or tag:<key>.",
            )
    return pairs


def _documents(call: AwsCall, pairs: list[tuple[str, list[str]]]) -> QuerySet[Document]:
    rows = selectors.documents_list(principal=call.principal, filters=selectors.DocumentFilter())
    for key, values in pairs:
        rows = _narrowed(rows, key, values, from_list="DocumentFilterList" in call.params)
    return rows


def _narrowed(
    rows: QuerySet[Document], key: str, values: list[str], *, from_list: bool
) -> QuerySet[Document]:
    """What the selector's DocumentFilter cannot say: several values, prefixes, platforms."""
    if key == "Owner":
        owners = {_OWNERS.get(value, "none") for value in values}
        if "" in owners or owners == {"Self", "Bosun"}:
            return rows
        if owners == {"none"}:
            return rows.none()
        return rows.filter(is_builtin="Bosun" in owners)
    if key == "Name":
        # DocumentFilterList's Name is a substring; Filters' Name is the start of the name.
        lookup = "name__icontains" if from_list else "name__istartswith"
        matched = rows.none()
        for value in values:
            matched |= rows.filter(**{lookup: value})
        return matched
    if key == "SearchKeyword":
        matched = rows.none()
        for value in values:
            matched |= rows.filter(name__icontains=value)
        return matched
    if key == "DocumentType":
        return rows.filter(document_type__in=values)
    if key == "PlatformTypes":
        documents = list(rows.order_by())
        defaults = selectors.document_default_versions(documents)
        wanted = set(values)
        return rows.filter(
            pk__in=[
                document.pk
                for document in documents
                if wanted & set(getattr(defaults.get(document.pk), "platform_types", []))
            ]
        )
    tag_key = key.removeprefix("tag:")
    if values:
        return rows.filter(tags__key=tag_key, tags__value__in=values)
    return rows.filter(tags__key=tag_key)


@operation("ListDocuments")
def list_documents(call: AwsCall) -> dict[str, Any]:
    pairs = _document_filters(call)
    rows = _documents(call, pairs).prefetch_related("tags")
    page = aws_page(rows, call, kind="documents", query={"filters": pairs}, order=("name",))
    defaults = selectors.document_default_versions(page.items)
    items = []
    for document in page.items:
        version = defaults.get(document.pk)
        item: dict[str, Any] = {
            "Name": document.name,
            "CreatedDate": document.created_at,
            "Owner": _owner(call, document),
            "DocumentVersion": str(document.default_version),
            "DocumentType": document.document_type,
            "Tags": tag_list(_stored_tags(document)),
        }
        if version is not None:
            item["PlatformTypes"] = list(version.platform_types)
            item["SchemaVersion"] = version.schema_version
            item["DocumentFormat"] = version.content_format
            if version.version_name:
                item["VersionName"] = version.version_name
        items.append(item)
    return listing("DocumentIdentifiers", page, items)


@operation("ListDocumentVersions")
def list_document_versions(call: AwsCall) -> dict[str, Any]:
    name = document_name(call.params["Name"])
    rows = selectors.document_versions(principal=call.principal, name=name)
    page = aws_page(rows, call, kind="document-versions", query={"name": name}, order=("-version",))
    items = []
    for version in page.items:
        item: dict[str, Any] = {
            "Name": version.document.name,
            "DocumentVersion": str(version.version),
            "CreatedDate": version.created_at,
            "IsDefaultVersion": version.version == version.document.default_version,
            "DocumentFormat": version.content_format,
            "Status": ACTIVE,
        }
        if version.version_name:
            item["VersionName"] = version.version_name
        items.append(item)
    return listing("DocumentVersions", page, items)


@operation("UpdateDocumentDefaultVersion")
def update_document_default_version(call: AwsCall) -> dict[str, Any]:
    version = document_default_version_set(
        principal=call.principal,
        name=call.params["Name"],
        document_version=call.params["DocumentVersion"],
    )
    description: dict[str, Any] = {
        "Name": version.document.name,
        "DefaultVersion": str(version.version),
    }
    if version.version_name:
        description["DefaultVersionName"] = version.version_name
    return {"Description": description}


def _tags_add(call: AwsCall, resource_id: str, tags: list[dict[str, str]]) -> None:
    document_tags_add(principal=call.principal, name=document_name(resource_id), tags=tags)


def _tags(call: AwsCall, resource_id: str) -> dict[str, str]:
    return document_tags(principal=call.principal, name=document_name(resource_id))


def _tags_remove(call: AwsCall, resource_id: str, keys: list[str]) -> None:
    document_tags_remove(principal=call.principal, name=document_name(resource_id), keys=keys)


tagging("Document", Tagging(add=_tags_add, tags=_tags, remove=_tags_remove))
