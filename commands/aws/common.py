"""What the Documents and Run Command operations share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from rest_framework import exceptions as drf_exceptions

from bosun.lib.aws import errors
from bosun.lib.aws.registry import AwsCall
from commands.api.common import Page, page_of

ACTIVE = "Active"
HASH_TYPE = "Sha256"
COMMAND = "Command"
# The owner AWS names for documents the service ships (Bosun's built-ins answer for AWS's).
BUILTIN_OWNER = "Amazon"
# AWS's limits on what GetCommandInvocation and a CommandPlugin carry inline.
STDOUT_CHARS = 24000
STDERR_CHARS = 8000
PLUGIN_OUTPUT_CHARS = 2500
ERROR_SEPARATOR = "\n----------ERROR-------\n"


def refuse_unsupported(params: Mapping[str, Any], members: Mapping[str, str]) -> None:
    """A ValidationException for the first member Bosun does not support: {member: why}."""
    for member, why in members.items():
        if member in params:
            raise errors.validation(f"{member} is not supported by Bosun: {why}")


def document_name(name: str) -> str:
    """A document named by name or ARN (`arn:aws:ssm:…:document/Name`)."""
    if name.startswith("arn:"):
        return name.rpartition(":document/")[2] or name
    return name


def aws_page(
    rows: QuerySet[Any],
    call: AwsCall,
    *,
    kind: str,
    query: Mapping[str, Any],
    order: Sequence[str],
) -> Page:
    """One page of `rows` behind an opaque NextToken bound to the filters (`query`)."""
    try:
        return page_of(
            rows,
            kind=f"aws-{kind}",
            query=dict(query),
            order=order,
            max_results=call.params.get("MaxResults"),
            next_token=call.params.get("NextToken"),
        )
    except drf_exceptions.ValidationError:
        raise errors.invalid_next_token() from None


def listing(key: str, page: Page, items: list[dict[str, Any]]) -> dict[str, Any]:
    answer: dict[str, Any] = {key: items}
    if page.next_token:
        answer["NextToken"] = page.next_token
    return answer


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": tags[key]} for key in sorted(tags)]


def moment(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.validation(
            f"{value!s:.40} is not a date and time: give one as 2024-01-31T12:00:00Z."
        ) from None
    if when.tzinfo is None:
        raise errors.validation(f"{value!s:.40} has no time zone: end it with Z or +00:00.")
    return when
