"""Writing documents: create, new versions, the default version, delete.

Each service authorizes the action on the document's ARN, validates the content
(commands.documents.schema), writes in one transaction and records the audit event.
Built-in documents are read-only.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from access.authorization import Principal, authorize
from access.directory import user_arn
from commands.documents.builtin import BUILTIN_DOCUMENTS, RESERVED_PREFIXES, canonical_name
from commands.documents.content import content_hash
from commands.documents.schema import DocumentSpec, document_parse
from commands.exceptions import (
    CommandsValidationError,
    DocumentAlreadyExists,
    DocumentVersionLimitExceeded,
    DuplicateDocumentContent,
    DuplicateDocumentVersionName,
    InvalidDocument,
    InvalidDocumentOperation,
    InvalidDocumentVersion,
)
from commands.models import Document, DocumentVersion
from commands.scope import document_arn

NAME = re.compile(r"^[a-zA-Z0-9_\-.]{3,128}$")
VERSION_NAME = re.compile(r"^[a-zA-Z0-9_\-.]{1,128}$")
MAX_VERSIONS = 1000
LATEST = "$LATEST"
DEFAULT = "$DEFAULT"


def _checked_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise CommandsValidationError(
            "A document name is 3 to 128 letters, digits, _ - and . characters.", field="name"
        )
    if name.lower().startswith(RESERVED_PREFIXES) or canonical_name(name) in BUILTIN_DOCUMENTS:
        raise CommandsValidationError(
            f"Document names starting with {', '.join(RESERVED_PREFIXES)} (any case) are "
            "reserved for the documents AWS and Bosun ship; choose another name.",
            field="name",
        )
    return name


def _checked_version_name(version_name: str) -> str:
    if version_name and not VERSION_NAME.match(version_name):
        raise CommandsValidationError(
            "A version name is 1 to 128 letters, digits, _ - and . characters.",
            field="version_name",
        )
    return version_name


def document_create(
    *,
    principal: Principal,
    name: str,
    content: str,
    content_format: str = "JSON",
    version_name: str = "",
    tags: dict[str, str] | None = None,
) -> DocumentVersion:
    """A new document at version 1 (its default and latest)."""
    name = _checked_name(name)
    version_name = _checked_version_name(version_name)
    authorize(principal, "ssm:CreateDocument", document_arn(name))
    body, spec = document_parse(content, content_format)
    try:
        with transaction.atomic():
            document = Document.objects.create(
                name=name, created_by=principal.user, default_version=1, latest_version=1
            )
            version = _version_add(principal, document, 1, content, content_format, body, spec)
            version.version_name = version_name
            version.save(update_fields=["version_name"])
            for key, value in (tags or {}).items():
                document.tags.create(key=key, value=value)
            principal.record(
                "ssm:CreateDocument",
                resources=[document_arn(name)],
                params={
                    "Name": name,
                    "DocumentFormat": content_format,
                    "Hash": version.content_hash,
                },
            )
    except IntegrityError:
        raise DocumentAlreadyExists("The specified document already exists.") from None
    return version


def _version_add(
    principal: Principal,
    document: Document,
    number: int,
    content: str,
    content_format: str,
    body: dict[str, Any],
    spec: DocumentSpec,
) -> DocumentVersion:
    return DocumentVersion.objects.create(
        document=document,
        version=number,
        content=content,
        content_format=content_format,
        content_hash=content_hash(content),
        body=body,
        description=spec.description,
        schema_version=spec.schema_version,
        platform_types=spec.platform_types,
        created_by_arn=user_arn(principal.user),
    )


def _own_document(name: str, *, locked: bool = False) -> Document:
    """A user document by name; a built-in is refused for every write."""
    rows = Document.objects.select_for_update() if locked else Document.objects
    document = rows.filter(name=canonical_name(name)).first()
    if document is None:
        raise InvalidDocument("The specified document does not exist.")
    if document.is_builtin:
        raise InvalidDocumentOperation(
            f"{document.name} ships with Bosun and is read-only; copy its content into a new "
            "document to change it."
        )
    return document


def document_update(
    *,
    principal: Principal,
    name: str,
    content: str,
    content_format: str = "JSON",
    document_version: str = LATEST,
    version_name: str = "",
) -> DocumentVersion:
    """A new latest version. `document_version` must name the latest (as AWS asks), so two
    editors cannot silently overwrite each other's version."""
    version_name = _checked_version_name(version_name)
    authorize(principal, "ssm:UpdateDocument", document_arn(canonical_name(name)))
    body, spec = document_parse(content, content_format)
    with transaction.atomic():
        document = _own_document(name, locked=True)
        if document_version not in (LATEST, str(document.latest_version)):
            raise InvalidDocumentVersion(
                f"Version {document_version} is not the latest version of {document.name} "
                f"({document.latest_version}); update from the latest version."
            )
        if document.latest_version >= MAX_VERSIONS:
            raise DocumentVersionLimitExceeded(
                f"{document.name} has {MAX_VERSIONS} versions; delete the document or some "
                "versions first."
            )
        latest = document.versions.get(version=document.latest_version)
        if latest.content_hash == content_hash(content):
            raise DuplicateDocumentContent(
                "The content of the association document matches another document. Change "
                "the content of the document and try again."
            )
        if version_name and document.versions.filter(version_name=version_name).exists():
            raise DuplicateDocumentVersionName(
                f"The version name {version_name} is already used by a version of {document.name}."
            )
        number = document.latest_version + 1
        version = _version_add(principal, document, number, content, content_format, body, spec)
        if version_name:
            version.version_name = version_name
            version.save(update_fields=["version_name"])
        Document.objects.filter(pk=document.pk).update(latest_version=number)
        document.latest_version = number
        version.document = document
        principal.record(
            "ssm:UpdateDocument",
            resources=[document_arn(document.name)],
            params={"Name": document.name, "DocumentVersion": str(number)},
        )
    return version


def document_default_version_set(
    *, principal: Principal, name: str, document_version: str
) -> DocumentVersion:
    authorize(principal, "ssm:UpdateDocumentDefaultVersion", document_arn(canonical_name(name)))
    with transaction.atomic():
        document = _own_document(name, locked=True)
        version = _version_of(document, document_version)
        Document.objects.filter(pk=document.pk).update(default_version=version.version)
        principal.record(
            "ssm:UpdateDocumentDefaultVersion",
            resources=[document_arn(document.name)],
            params={"Name": document.name, "DocumentVersion": str(version.version)},
        )
    return version


def _version_of(document: Document, document_version: str) -> DocumentVersion:
    if document_version == LATEST:
        number = document.latest_version
    elif document_version == DEFAULT:
        number = document.default_version
    else:
        try:
            number = int(document_version)
        except (TypeError, ValueError):
            number = -1
    version = document.versions.filter(version=number).first() if number > 0 else None
    if version is None:
        raise InvalidDocumentVersion(
            f"The document version is not valid or does not exist: {document_version!s:.40}."
        )
    return version


def document_delete(
    *, principal: Principal, name: str, document_version: str = "", version_name: str = ""
) -> None:
    """Delete a document, or one of its versions (never the default one)."""
    authorize(principal, "ssm:DeleteDocument", document_arn(canonical_name(name)))
    with transaction.atomic():
        document = _own_document(name, locked=True)
        if document_version or version_name:
            version = (
                _version_of(document, document_version)
                if document_version
                else document.versions.filter(version_name=version_name).first()
            )
            if version is None:
                raise InvalidDocumentVersion(f"{document.name} has no version {version_name}.")
            if version.version == document.default_version:
                raise InvalidDocumentOperation(
                    "The default version of a document cannot be deleted; make another "
                    "version the default first, or delete the whole document."
                )
            version.delete()
            if version.version == document.latest_version:
                newest = document.versions.order_by("-version").values_list("version", flat=True)
                Document.objects.filter(pk=document.pk).update(latest_version=newest.first())
        else:
            document.delete()
        principal.record(
            "ssm:DeleteDocument",
            resources=[document_arn(document.name)],
            params={"Name": document.name, "DocumentVersion": document_version or None},
        )
