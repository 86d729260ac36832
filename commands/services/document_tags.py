"""Tags on documents: read, add and remove (AWS's tagging operations for ResourceType
Document), authorized on the document's ARN and audited. Built-in documents are read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from access.authorization import Principal, authorize
from commands.documents.builtin import canonical_name
from commands.models import Document, DocumentTag
from commands.scope import document_arn
from fleet.exceptions import FleetValidationError, InvalidResourceId
from fleet.tags import tag_keys_validated, tags_merged, tags_validated

ADD_TAGS = "ssm:AddTagsToResource"
LIST_TAGS = "ssm:ListTagsForResource"
REMOVE_TAGS = "ssm:RemoveTagsFromResource"


def _document(name: str, *, writing: bool, locked: bool = False) -> Document:
    rows = Document.objects.select_for_update() if locked else Document.objects
    document = rows.filter(name=canonical_name(name)).first()
    if document is None:
        raise InvalidResourceId(
            f"The resource ID is not valid: there is no document {name!s:.128}."
        )
    if writing and document.is_builtin:
        raise InvalidResourceId(
            f"{document.name} ships with Bosun and is read-only; its tags cannot change."
        )
    return document


def _tags_of(document: Document) -> dict[str, str]:
    return dict(document.tags.order_by("key").values_list("key", "value"))


def document_tags(*, principal: Principal, name: str) -> dict[str, str]:
    authorize(principal, LIST_TAGS, document_arn(canonical_name(name)))
    return _tags_of(_document(name, writing=False))


def document_tags_add(
    *, principal: Principal, name: str, tags: Mapping[str, str] | Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """Add or overwrite tags; returns all the document's tags. TooManyTagsError past 50."""
    wanted = tags_validated(tags)
    if not wanted:
        raise FleetValidationError("Give at least one tag to add.")
    context: dict[str, Any] = {"aws:TagKeys": list(wanted)}
    context.update({f"aws:RequestTag/{key}": value for key, value in wanted.items()})
    authorize(principal, ADD_TAGS, document_arn(canonical_name(name)), context)
    with transaction.atomic():
        document = _document(name, writing=True, locked=True)
        tags_merged(document.name, _tags_of(document), wanted)
        for key, value in wanted.items():
            DocumentTag.objects.update_or_create(
                document=document, key=key, defaults={"value": value}
            )
        principal.record(
            ADD_TAGS,
            resources=[document_arn(document.name)],
            params={
                "ResourceType": "Document",
                "ResourceId": document.name,
                "Tags": [{"Key": key, "Value": wanted[key]} for key in sorted(wanted)],
            },
        )
        return _tags_of(document)


def document_tags_remove(
    *, principal: Principal, name: str, keys: Iterable[object]
) -> dict[str, str]:
    """Remove tags by key (keys the document lacks are ignored); returns its tags."""
    unwanted = tag_keys_validated(keys)
    authorize(
        principal,
        REMOVE_TAGS,
        document_arn(canonical_name(name)),
        {"aws:TagKeys": unwanted},
    )
    with transaction.atomic():
        document = _document(name, writing=True, locked=True)
        document.tags.filter(key__in=unwanted).delete()
        principal.record(
            REMOVE_TAGS,
            resources=[document_arn(document.name)],
            params={"ResourceType": "Document", "ResourceId": document.name, "TagKeys": unwanted},
        )
        return _tags_of(document)
