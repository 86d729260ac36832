"""NextToken/MaxResults for listings with no paging of their own in the services.

The token is opaque to clients (bosun.lib.page_tokens: signed, so it can neither be read nor
forged) and bound to the operation and the request's other members, so a token reused with
other filters is refused with AWS's InvalidNextToken rather than paging something else.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from bosun.lib.aws import errors
from bosun.lib.aws.registry import AwsCall
from bosun.lib.page_tokens import InvalidPageToken, token_make, token_read

_PAGING = ("NextToken", "MaxResults")


def offset_page(
    queryset: QuerySet[Any], call: AwsCall, *, kind: str, default_size: int
) -> tuple[list[Any], str | None]:
    """One page of `queryset` (which must be ordered) and the next page's token, None at the
    end (AWS ends a listing by leaving NextToken out)."""
    query = {key: value for key, value in call.params.items() if key not in _PAGING}
    offset = 0
    token = call.params.get("NextToken")
    if token is not None:
        try:
            offset = token_read(token, kind=f"aws-{kind}", query=query)
        except InvalidPageToken:
            raise errors.invalid_next_token() from None
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise errors.invalid_next_token()
    limit = call.params.get("MaxResults", default_size)
    rows = list(queryset[offset : offset + limit + 1])
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], token_make(kind=f"aws-{kind}", query=query, position=offset + limit)
