"""Parameter Store reads: one, many, by path, describe, history, tags (DESIGN.md §4).

Without decryption a SecureString's value is its ciphertext (base64). With it, each value is
opened by `access.kms.value_decrypt_for`, which authorizes `kms:Decrypt` on the value's key
and writes the audit event; reads of plain values are not audited (AWS's default too).

A path read returns only the parameters the caller may read (AWS refuses the whole call);
a page may hold fewer than MaxResults when some were left out.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Substr
from django.db.models.lookups import Exact

from access import kms
from access.authorization import Principal, authorize
from bosun.lib import page_tokens
from bosun.lib.arn import arn
from bosun.lib.model_rows import ModelColumns, column_of
from parameters import policies as policy_rules
from parameters import rules
from parameters.exceptions import (
    InvalidFilterKey,
    InvalidFilterOption,
    InvalidFilterValue,
    InvalidNextToken,
    ParameterNotFound,
    ParameterValidationError,
    ParameterVersionNotFound,
)
from parameters.models import Parameter, ParameterLabel, ParameterNotice, ParameterVersion
from parameters.scope import Mode, parameter_arn, parameter_scope, tag_context
from parameters.services import ciphertext_text, secure_context

GET = "ssm:GetParameter"
GET_MANY = "ssm:GetParameters"
GET_BY_PATH = "ssm:GetParametersByPath"
HISTORY = "ssm:GetParameterHistory"
DESCRIBE = "ssm:DescribeParameters"
LIST_TAGS = "ssm:ListTagsForResource"
MAX_GET = 10
MAX_PATH_PAGE = 10
MAX_DESCRIBE_PAGE = 50
MAX_HISTORY_PAGE = 50


@dataclass(frozen=True)
class ParameterValue:
    name: str
    type: str
    value: str
    version: int
    last_modified_at: datetime
    data_type: str
    arn: str
    selector: str = ""
    decrypted: bool = False


@dataclass
class Page:
    items: list[Any]
    next_token: str | None = None


def _not_found(name: str) -> ParameterNotFound:
    return ParameterNotFound(f"Parameter {name} not found.")


def _value_of(
    principal: Principal, row: ParameterVersion, *, name: str, lookup: str, decrypt: bool
) -> tuple[str, bool]:
    if row.type != "SecureString" or row.ciphertext is None:
        return row.value, False
    blob = bytes(row.ciphertext)
    if not decrypt:
        return ciphertext_text(blob), False
    plaintext = kms.value_decrypt_for(
        principal=principal,
        blob=blob,
        context=secure_context(lookup, row.version),
        resources=[parameter_arn(name)],
    )
    return plaintext.decode("utf-8"), True


def _as_value(
    principal: Principal,
    row: ParameterVersion,
    parameter: Parameter,
    *,
    decrypt: bool,
    selector: str = "",
) -> ParameterValue:
    value, decrypted = _value_of(
        principal, row, name=parameter.name, lookup=parameter.lookup, decrypt=decrypt
    )
    return ParameterValue(
        name=parameter.name,
        type=row.type,
        value=value,
        version=row.version,
        last_modified_at=row.modified_at,
        data_type=row.data_type,
        arn=parameter_arn(parameter.name),
        selector=selector,
        decrypted=decrypted,
    )


def _authorize_read(
    principal: Principal, action: str, parameter: Parameter | None, name: str
) -> None:
    # Tags cost a query: read them only when some statement's conditions look at them.
    if parameter is not None and parameter_scope(principal, action).needs_tags:
        tags = list(parameter.tags.values_list("key", "value"))
        authorize(principal, action, parameter_arn(name), tag_context(tags))
    else:
        authorize(principal, action, parameter_arn(name))


def _version_row(
    selector: rules.Selector,
) -> tuple[Parameter, ParameterVersion | None] | None:
    """The parameter and the version a selector names, in one query for the newest (None for
    a version or label it does not have: the caller authorizes before saying so)."""
    if selector.version is None and selector.label is None:
        return _newest_version(selector.lookup)
    parameter = Parameter.objects.filter(lookup=selector.lookup).first()
    if parameter is None:
        return None
    if selector.version is not None:
        found = ParameterVersion.objects.filter(
            parameter=parameter, version=selector.version
        ).first()
    else:
        label = (
            ParameterLabel.objects.select_related("version")
            .filter(parameter=parameter, name=selector.label)
            .first()
        )
        found = label.version if label is not None else None
    return parameter, found


_VERSION_COLUMNS = ModelColumns(ParameterVersion, "v")
_PARAMETER_COLUMNS = ModelColumns(Parameter, "p")


@functools.cache
def _newest_version_sql() -> str:
    quote = connection.ops.quote_name
    version_parameter = quote(column_of(ParameterVersion, "parameter"))
    # Identifiers from the models, quoted; the one value is a parameter.
    return (
        f"SELECT {_VERSION_COLUMNS.select_list()}, {_PARAMETER_COLUMNS.select_list()} "  # noqa: S608
        f"FROM {_VERSION_COLUMNS.table()} JOIN {_PARAMETER_COLUMNS.table()} "
        f"ON v.{version_parameter} = p.{quote(column_of(Parameter, 'id'))} "
        f"WHERE p.{quote('lookup')} = %s AND v.{quote('version')} = p.{quote('version')}"
    )


def _newest_version(lookup: str) -> tuple[Parameter, ParameterVersion] | None:
    """The parameter and its newest version: the hottest read there is (every GetParameter).

    Hand-written rather than `select_related(...).get(...)`: compiling that query took more
    CPU than PostgreSQL takes to answer it (bench/aws.py); the instances are the ORM's
    (bosun.lib.model_rows applies the same conversions).
    """
    with connection.cursor() as cursor:
        cursor.execute(_newest_version_sql(), [lookup])
        found = cursor.fetchone()
    if found is None:
        return None
    width = _VERSION_COLUMNS.width
    row = _VERSION_COLUMNS.instance(found[:width])
    parameter = _PARAMETER_COLUMNS.instance(found[width:])
    row.parameter = parameter
    return parameter, row


def parameter_get(
    *, principal: Principal, name: str, with_decryption: bool = False, action: str = GET
) -> ParameterValue:
    """One parameter by `name`, `name:version` or `name:label`."""
    selector = rules.parse_selector(name)
    found = _version_row(selector)
    _authorize_read(
        principal, action, found[0] if found else None, found[0].name if found else selector.name
    )
    if found is None:
        raise _not_found(selector.name)
    parameter, row = found
    if row is None:
        raise ParameterVersionNotFound(
            f"Systems Manager could not find version {selector.text[1:]} of {parameter.name}. "
            "Verify the version and try again."
        )
    return _as_value(principal, row, parameter, decrypt=with_decryption, selector=selector.text)


def parameters_get(
    *, principal: Principal, names: Sequence[str], with_decryption: bool = False
) -> tuple[list[ParameterValue], list[str]]:
    """Up to 10 parameters; names that are not found come back in the second list."""
    unique = list(dict.fromkeys(names))
    if not 1 <= len(unique) <= MAX_GET:
        raise ParameterValidationError(
            f"Give between 1 and {MAX_GET} parameter names.", field="names"
        )
    found: list[ParameterValue] = []
    invalid: list[str] = []
    for name in unique:
        try:
            found.append(
                parameter_get(
                    principal=principal, name=name, with_decryption=with_decryption, action=GET_MANY
                )
            )
        except (ParameterNotFound, ParameterVersionNotFound):
            invalid.append(name)
        except ParameterValidationError:
            invalid.append(name)
    return found, invalid


# --- Filters --------------------------------------------------------------------------------

_PATH_FILTER_KEYS = ("Type", "KeyId", "Label")
_DESCRIBE_KEYS = ("Name", "Type", "KeyId", "Path", "Label", "Tier", "DataType")
_OLD_FILTER_KEYS = ("Name", "Type", "KeyId")
MAX_FILTERS = 50
MAX_FILTER_VALUES = 50
FILTER_VALUE_MAX = 1024


@dataclass(frozen=True)
class Filter:
    key: str
    option: str
    values: tuple[str, ...]


def parse_filters(raw: object, *, allowed_keys: Sequence[str], tags: bool) -> list[Filter]:
    """ParameterFilters ([{"Key", "Option", "Values"}]) checked by AWS's rules."""
    if raw in (None, []):
        return []
    if not isinstance(raw, list) or len(raw) > MAX_FILTERS:
        raise ParameterValidationError(f"Give at most {MAX_FILTERS} filters as a list.")
    filters: list[Filter] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("Key"), str):
            raise InvalidFilterKey('Each filter is {"Key": ..., "Option": ..., "Values": [...]}.')
        key = item["Key"]
        is_tag = key.startswith("tag:") and len(key) > 4
        if key not in allowed_keys and not (tags and is_tag):
            raise InvalidFilterKey(
                f"The following filter key is not valid: {key}. Valid filter keys include: "
                f"[{', '.join(allowed_keys)}{', tag:<key>' if tags else ''}]."
            )
        option = item.get("Option") or ("Recursive" if key == "Path" else "Equals")
        valid_options = _options_for(key)
        if option not in valid_options:
            raise InvalidFilterOption(
                f"The following filter option is not valid: {option}. Valid options for the "
                f"{key} filter are: [{', '.join(valid_options)}]."
            )
        values = item.get("Values")
        if values is None and is_tag:
            values = []
        if not isinstance(values, list) or (not values and not is_tag):
            raise InvalidFilterValue(f"The {key} filter needs a list of values.")
        if len(values) > MAX_FILTER_VALUES or any(
            not isinstance(v, str) or not v or len(v) > FILTER_VALUE_MAX for v in values
        ):
            raise InvalidFilterValue(
                f"The {key} filter's values must be 1 to {MAX_FILTER_VALUES} non-empty texts "
                f"of at most {FILTER_VALUE_MAX} characters."
            )
        exact = option == "Equals"
        if (
            key == "Type"
            and exact
            and any(v not in ("String", "StringList", "SecureString") for v in values)
        ):
            raise InvalidFilterValue("The Type filter takes String, StringList or SecureString.")
        if key == "Tier" and exact and any(v not in ("Standard", "Advanced") for v in values):
            raise InvalidFilterValue("The Tier filter takes Standard or Advanced.")
        if key == "Path":
            values = [rules.parse_path(v) for v in values]
        filters.append(Filter(key=key, option=option, values=tuple(values)))
    return filters


def _options_for(key: str) -> tuple[str, ...]:
    # As botocore's ParameterStringFilter documents them: Equals and BeginsWith for every key
    # but Path (Recursive, OneLevel) and Label (Equals only); Name also takes Contains.
    if key == "Path":
        return ("Recursive", "OneLevel")
    if key == "Name":
        return ("Equals", "BeginsWith", "Contains")
    if key == "Label":
        return ("Equals",)
    return ("Equals", "BeginsWith")  # Type, KeyId, Tier, DataType, tag:<key>


def parse_old_filters(raw: object) -> list[Filter]:
    """DescribeParameters' older `Filters` ([{"Key", "Values"}], Name/Type/KeyId, Equals)."""
    if raw in (None, []):
        return []
    if not isinstance(raw, list):
        raise ParameterValidationError("Filters must be a list.")
    converted = []
    for item in raw:
        if not isinstance(item, dict) or item.get("Key") not in _OLD_FILTER_KEYS:
            key = item.get("Key") if isinstance(item, dict) else item
            raise InvalidFilterKey(
                f"The following filter key is not valid: {key}. Valid filter keys include: "
                f"[{', '.join(_OLD_FILTER_KEYS)}]."
            )
        converted.append({"Key": item["Key"], "Option": "Equals", "Values": item.get("Values")})
    return parse_filters(converted, allowed_keys=_OLD_FILTER_KEYS, tags=False)


def _begins(field_name: str, prefix: str) -> Q:
    """`field` starts with `prefix`, case-sensitively (startswith is LIKE, which SQLite
    compares without case)."""
    return Q(**{f"{field_name}__startswith": prefix}) & Q(
        Exact(Substr(field_name, 1, len(prefix)), Value(prefix))
    )


_FIELDS = {"Type": "type", "Tier": "tier", "DataType": "data_type", "KeyId": "key_id"}


def _apply(queryset: QuerySet[Parameter], filters: Sequence[Filter]) -> QuerySet[Parameter]:
    for item in filters:
        key, values = item.key, item.values
        if key == "Name":
            names = Q()
            for value in values:
                lookup = rules.lookup_of(value)
                if item.option == "Equals":
                    names |= Q(lookup=lookup)
                elif item.option == "BeginsWith":
                    names |= _begins("lookup", lookup) | _begins("name", value)
                else:
                    names |= Q(name__contains=value)
            queryset = queryset.filter(names)
        elif key in _FIELDS:
            column = _FIELDS[key]
            if item.option == "BeginsWith":
                any_prefix = Q()
                for value in values:
                    any_prefix |= _begins(column, value)
                queryset = queryset.filter(any_prefix)
            else:
                queryset = queryset.filter(**{f"{column}__in": values})
        elif key == "Label":
            queryset = queryset.filter(
                labels__name__in=values, labels__version__version=F("version")
            ).distinct()
        elif key == "Path":
            paths = Q()
            for path in values:
                paths |= Q(
                    pk__in=Parameter.objects.under(path, recursive=item.option == "Recursive")
                )
            queryset = queryset.filter(paths)
        elif key.startswith("tag:"):
            tag_key = key[4:]
            if not values:
                queryset = queryset.filter(tags__key=tag_key)
            elif item.option == "BeginsWith":
                any_value = Q()
                for value in values:
                    any_value |= Q(tags__value__startswith=value)
                queryset = queryset.filter(Q(tags__key=tag_key) & any_value)
            else:
                queryset = queryset.filter(tags__key=tag_key, tags__value__in=values)
            queryset = queryset.distinct()
    return queryset


def _page_size(raw: object, maximum: int) -> int:
    if raw is None:
        return maximum
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= maximum:
        raise ParameterValidationError(
            f"MaxResults must be a whole number from 1 to {maximum}.", field="max_results"
        )
    return raw


def _after(token: object, *, kind: str, query: Any) -> str:
    if token in (None, ""):
        return ""
    try:
        position = page_tokens.token_read(token, kind=kind, query=query)
    except page_tokens.InvalidPageToken:
        raise InvalidNextToken("The specified token is not valid.") from None
    if not isinstance(position, str):
        raise InvalidNextToken("The specified token is not valid.")
    return position


def _paged(
    queryset: QuerySet[Any],
    *,
    principal: Principal,
    action: str,
    size: int,
    kind: str,
    query: Any,
    token: object,
    resource: str,
    via: str = "",
) -> tuple[list[Any], str | None]:
    """One page of the parameters `action` is allowed on, in name order, keyed by `lookup`.

    `queryset` holds parameters, or rows reaching their parameter through the relation `via`
    (a path read pages versions, so values come in the same query). Rows the caller may not
    see are skipped, so a page is filled from further rows; a scan stops after a bounded
    number of rows and hands back a token, never looping forever.
    """
    key = f"{via}__lookup" if via else "lookup"

    def parameter_of(row: Any) -> Parameter:
        return getattr(row, via) if via else row

    after = _after(token, kind=kind, query=query)
    scope = parameter_scope(principal, action)
    if scope.mode is Mode.NONE:
        # No statement allows the action anywhere: refuse the call (and audit the denial)
        # as AWS does, rather than answer with an empty page.
        authorize(principal, action, resource)
        return [], None
    rows = queryset.order_by(key)
    if after:
        rows = rows.filter(**{f"{key}__gt": after})
    picked: list[Any] = []
    scanned_to = ""
    # Everything allowed: one row past the page says whether more are left. Otherwise read
    # ahead, as some rows may be left out.
    batch = size + 1 if scope.mode is Mode.ALL else max(size * 4, 40)
    scanned = 0
    more: bool | None = None  # None: only a query can tell whether rows are left
    while len(picked) < size:
        ahead = rows.filter(**{f"{key}__gt": scanned_to}) if scanned_to else rows
        chunk = list(ahead[:batch])
        if not chunk:
            return picked, None
        tags = (
            Parameter.objects.filter(
                pk__in=[parameter_of(row).pk for row in chunk]
            ).tags_by_parameter()
            if scope.needs_tags
            else {}
        )
        reached = 0
        for row in chunk:
            reached += 1
            parameter = parameter_of(row)
            scanned_to = parameter.lookup
            if scope.allows(parameter.name, tags.get(parameter.pk, ())):
                picked.append(row)
                if len(picked) == size:
                    break
        scanned += reached
        # Rows read but not reached, or a short chunk, say whether any are left.
        more = True if reached < len(chunk) else (False if len(chunk) < batch else None)
        if more is False:
            return picked, None
        if scanned >= 1000 and len(picked) < size:
            break  # a page with fewer results and a token, as AWS may answer
    if more is None:
        more = rows.filter(**{f"{key}__gt": scanned_to}).exists()
    next_token = (
        page_tokens.token_make(kind=kind, query=query, position=scanned_to) if more else None
    )
    return picked, next_token


def parameters_by_path(
    *,
    principal: Principal,
    path: str,
    recursive: bool = False,
    filters: object = None,
    with_decryption: bool = False,
    max_results: object = None,
    next_token: object = None,
) -> Page:
    """The readable parameters below `path`, a page (≤ 10) at a time."""
    checked_path = rules.parse_path(path)
    checked = parse_filters(filters, allowed_keys=_PATH_FILTER_KEYS, tags=False)
    size = _page_size(max_results, MAX_PATH_PAGE)
    parameters = _apply(Parameter.objects.under(checked_path, recursive=recursive), checked)
    # The newest version of each, its parameter joined: one query per page.
    newest = ParameterVersion.objects.select_related("parameter").filter(
        version=F("parameter__version"), parameter__in=parameters
    )
    query = {"path": checked_path, "recursive": recursive, "filters": [f.__dict__ for f in checked]}
    rows, token = _paged(
        newest,
        principal=principal,
        action=GET_BY_PATH,
        size=size,
        kind="by-path",
        query=query,
        token=next_token,
        resource=parameter_arn(checked_path),
        via="parameter",
    )
    values = [_as_value(principal, row, row.parameter, decrypt=with_decryption) for row in rows]
    return Page(items=values, next_token=token)


@dataclass(frozen=True)
class ParameterMetadata:
    parameter: Parameter
    arn: str
    labels: list[str] = field(default_factory=list)

    @property
    def policies(self) -> list[dict[str, str]]:
        return policy_rules.public(self.parameter.policies)


def parameters_describe(
    *,
    principal: Principal,
    filters: object = None,
    parameter_filters: object = None,
    max_results: object = None,
    next_token: object = None,
) -> Page:
    """Metadata (never values) of the parameters the caller may describe, ≤ 50 a page."""
    if filters not in (None, []) and parameter_filters not in (None, []):
        raise ParameterValidationError(
            "You can use either Filters or ParameterFilters in a single request."
        )
    checked = parse_old_filters(filters) or parse_filters(
        parameter_filters, allowed_keys=_DESCRIBE_KEYS, tags=True
    )
    size = _page_size(max_results, MAX_DESCRIBE_PAGE)
    queryset = _apply(Parameter.objects.all(), checked)
    query = {"filters": [f.__dict__ for f in checked]}
    parameters, token = _paged(
        queryset,
        principal=principal,
        action=DESCRIBE,
        size=size,
        kind="describe",
        query=query,
        token=next_token,
        resource=arn("ssm", "*"),
    )
    return Page(
        items=[ParameterMetadata(parameter=p, arn=parameter_arn(p.name)) for p in parameters],
        next_token=token,
    )


@dataclass(frozen=True)
class HistoryEntry:
    row: ParameterVersion
    name: str
    value: str
    labels: list[str]
    decrypted: bool


def parameter_history(
    *,
    principal: Principal,
    name: str,
    with_decryption: bool = False,
    max_results: object = None,
    next_token: object = None,
) -> Page:
    """Every kept version, oldest first, ≤ 50 a page, with labels and who wrote it."""
    lookup = rules.lookup_of(name) if isinstance(name, str) and name else ""
    if not lookup:
        raise ParameterValidationError("Parameter name must not be empty.", field="name")
    parameter = Parameter.objects.filter(lookup=lookup).first()
    _authorize_read(principal, HISTORY, parameter, parameter.name if parameter else name)
    if parameter is None:
        raise _not_found(name)
    size = _page_size(max_results, MAX_HISTORY_PAGE)
    query = {"name": parameter.lookup}
    after = _after(next_token, kind="history", query=query)
    rows = ParameterVersion.objects.filter(parameter=parameter).order_by("version")
    if after:
        if not after.isdigit():
            raise InvalidNextToken("The specified token is not valid.")
        rows = rows.filter(version__gt=int(after))
    page = list(rows.prefetch_related("labels")[: size + 1])
    more = len(page) > size
    page = page[:size]
    entries = []
    for row in page:
        value, decrypted = _value_of(
            principal, row, name=parameter.name, lookup=parameter.lookup, decrypt=with_decryption
        )
        entries.append(
            HistoryEntry(
                row=row,
                name=parameter.name,
                value=value,
                labels=sorted(label.name for label in row.labels.all()),
                decrypted=decrypted,
            )
        )
    token = (
        page_tokens.token_make(kind="history", query=query, position=str(page[-1].version))
        if more
        else None
    )
    return Page(items=entries, next_token=token)


def parameter_tags(*, principal: Principal, name: str) -> dict[str, str]:
    parameter = Parameter.objects.filter(lookup=rules.lookup_of(name)).first() if name else None
    _authorize_read(principal, LIST_TAGS, parameter, parameter.name if parameter else name)
    if parameter is None:
        raise _not_found(name)
    return dict(parameter.tags.values_list("key", "value"))


def parameter_find(*, principal: Principal, name: str, action: str = DESCRIBE) -> Parameter:
    """A parameter's row (metadata, no value) for the dashboard, authorized for `action`."""
    lookup = rules.lookup_of(name) if isinstance(name, str) and name else ""
    parameter = Parameter.objects.filter(lookup=lookup).first() if lookup else None
    _authorize_read(principal, action, parameter, parameter.name if parameter else name)
    if parameter is None:
        raise _not_found(name)
    return parameter


def parameter_labels(parameter: Parameter) -> dict[int, list[str]]:
    """{version: [labels]} of one parameter."""
    labels: dict[int, list[str]] = {}
    for version, label in ParameterLabel.objects.filter(parameter=parameter).values_list(
        "version__version", "name"
    ):
        labels.setdefault(version, []).append(label)
    return labels


def parameter_notices(*, principal: Principal, limit: int = 50) -> list[Any]:
    """The newest policy notices about parameters the principal may describe (an expired
    parameter is gone, so its notice is judged by its name alone)."""
    from_rows = ParameterNotice.objects.all()[: limit * 4]
    scope = parameter_scope(principal, DESCRIBE)
    return [n for n in from_rows if scope.allows(n.parameter_name)][:limit]
