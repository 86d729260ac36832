"""Tags given by people (validated by AWS's rules in fleet.tag_rules, with messages written as
sentences for forms and the API), and tag queries over managed nodes.

A tag query is `{"TagFilters": [{"Key": k, "Values": [v, ...]}, ...]}` as AWS Resource
Groups writes it: filters AND together, the values of one filter OR together, and a filter
without values asks only that the key exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db.models import Exists, OuterRef, Q

from fleet import tag_rules
from fleet.exceptions import FleetValidationError, TooManyTagsError
from fleet.models import NodeTag

MAX_TAG_FILTERS = 50
MAX_FILTER_VALUES = 20


def _sentence(problem: str) -> str:
    return f"{problem[:1].upper()}{problem[1:]}."


def tag_key_problem(key: object) -> str | None:
    """Why a tag key is refused, as a sentence, or None when it is fine."""
    problem = tag_rules.tag_key_problem(key)
    return _sentence(problem) if problem else None


def tag_value_problem(key: str, value: object) -> str | None:
    problem = tag_rules.tag_value_problem(key, value)
    return _sentence(problem) if problem else None


def tags_validated(tags: Mapping[str, str] | Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Tags as {key: value}, from a mapping or AWS's [{"Key", "Value"}] list; at most 50."""
    pairs: list[tuple[object, object]]
    if isinstance(tags, Mapping):
        pairs = list(tags.items())
    else:
        pairs = []
        for item in tags:
            if not isinstance(item, Mapping) or "Key" not in item:
                raise FleetValidationError('Each tag is {"Key": ..., "Value": ...}.')
            pairs.append((item["Key"], item.get("Value", "")))
    validated: dict[str, str] = {}
    for key, value in pairs:
        problem = tag_key_problem(key) or tag_value_problem(str(key), value)
        if problem:
            raise FleetValidationError(problem)
        key, value = str(key), str(value)  # both checked to be text above
        if key in validated:
            raise FleetValidationError(f'The tag key "{key}" is given twice.')
        validated[key] = value
    if len(validated) > tag_rules.MAX_TAGS:
        raise FleetValidationError(
            f"{len(validated)} tags given; a resource holds at most {tag_rules.MAX_TAGS}."
        )
    return validated


def tags_merged(
    resource: str,
    current: Mapping[str, str],
    added: Mapping[str, str],
    *,
    error: type[Exception] = TooManyTagsError,
) -> dict[str, str]:
    """`current` with `added` set over it; past 50 tags, `error` (the app's TooManyTagsError)
    naming `resource`."""
    merged = {**current, **added}
    if len(merged) > tag_rules.MAX_TAGS:
        raise error(
            f"{resource} would hold more than {tag_rules.MAX_TAGS} tags; remove some first."
        )
    return merged


def tag_keys_validated(keys: Iterable[object]) -> list[str]:
    validated = []
    for key in keys:
        problem = tag_key_problem(key)
        if problem:
            raise FleetValidationError(problem)
        validated.append(str(key))
    if not validated:
        raise FleetValidationError("Name at least one tag key.")
    return list(dict.fromkeys(validated))


def tags_as_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """AWS's shape for tags: [{"Key": k, "Value": v}], sorted by key."""
    return [{"Key": key, "Value": tags[key]} for key in sorted(tags)]


# --- Tag queries ----------------------------------------------------------------------------


def node_has_tag(key: str, values: Sequence[str] = ()) -> Q:
    """Nodes holding tag `key`, with one of `values` when any are given."""
    tags = NodeTag.objects.filter(node=OuterRef("pk"), key=key)
    if values:
        tags = tags.filter(value__in=list(values))
    return Q(Exists(tags))


def tag_query_validated(query: object) -> dict[str, list[dict[str, Any]]]:
    """A resource group's query in its one stored shape; FleetValidationError naming the fault."""
    if not isinstance(query, Mapping):
        raise FleetValidationError('The query is an object: {"TagFilters": [...]}.')
    unknown = set(query) - {"TagFilters"}
    if unknown:
        raise FleetValidationError(
            f"Unknown query field(s): {', '.join(sorted(map(str, unknown)))}; "
            "only TagFilters is supported."
        )
    filters = query.get("TagFilters")
    if not isinstance(filters, list) or not filters:
        raise FleetValidationError("Give at least one tag filter.")
    if len(filters) > MAX_TAG_FILTERS:
        raise FleetValidationError(
            f"{len(filters)} tag filters given; a query holds at most {MAX_TAG_FILTERS}."
        )
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, item in enumerate(filters, start=1):
        if not isinstance(item, Mapping) or set(item) - {"Key", "Values"}:
            raise FleetValidationError(
                f'Tag filter {number} must be {{"Key": ..., "Values": [...]}}.'
            )
        key = item.get("Key")
        problem = tag_key_problem(key)
        if problem:
            raise FleetValidationError(f"Tag filter {number}: {problem}")
        key = str(key)
        if key in seen:
            raise FleetValidationError(f'Tag filter {number}: the key "{key}" is filtered twice.')
        seen.add(key)
        values = item.get("Values", [])
        if not isinstance(values, list):
            raise FleetValidationError(f"Tag filter {number}: Values is a list.")
        if len(values) > MAX_FILTER_VALUES:
            raise FleetValidationError(
                f'Tag filter {number} ("{key}") has {len(values)} values; '
                f"at most {MAX_FILTER_VALUES}."
            )
        for value in values:
            problem = tag_value_problem(key, value)
            if problem:
                raise FleetValidationError(f"Tag filter {number}: {problem}")
        cleaned.append({"Key": key, "Values": list(dict.fromkeys(values))})
    return {"TagFilters": cleaned}


def tag_query_q(query: Mapping[str, Any]) -> Q:
    """The nodes a validated tag query matches: filters AND, values OR, no values = has key."""
    condition = Q()
    for item in query.get("TagFilters", []):
        condition &= node_has_tag(item["Key"], item.get("Values", []))
    return condition
