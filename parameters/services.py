"""Parameter Store writes: put, delete, label, tag. Every face calls these (DESIGN.md §4).

Each service authorizes (the action on the parameter's ARN, tags in the context), owns its
transaction, tells webhook subscribers what changed, and writes the audit event last, never
with a value in it.

Versions never go missing or double: a write locks the parameter's row (a new name races
on the unique `lookup` instead, and the loser retries as an overwrite or is told the
parameter exists), then takes the next number.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from access import kms
from access.authorization import Principal, authorize
from bosun.lib.arn import iam_arn
from fleet import tag_rules
from fleet.tags import tags_merged
from parameters import policies as policy_rules
from parameters import rules
from parameters.events import emit
from parameters.exceptions import (
    InvalidKeyId,
    ParameterAlreadyExists,
    ParameterMaxVersionLimitExceeded,
    ParameterNotFound,
    ParameterValidationError,
    ParameterVersionLabelLimitExceeded,
    ParameterVersionNotFound,
    TooManyTagsError,
)
from parameters.models import (
    Parameter,
    ParameterLabel,
    ParameterTag,
    ParameterType,
    ParameterVersion,
)
from parameters.scope import parameter_arn, tag_context

PUT = "ssm:PutParameter"
DELETE = "ssm:DeleteParameter"
DELETE_MANY = "ssm:DeleteParameters"
LABEL = "ssm:LabelParameterVersion"
UNLABEL = "ssm:UnlabelParameterVersion"
ADD_TAGS = "ssm:AddTagsToResource"
REMOVE_TAGS = "ssm:RemoveTagsFromResource"
MAX_DELETE = 10
_CREATE_ATTEMPTS = 3

UNSET: Any = object()  # "not given": an overwrite keeps the current setting


@dataclass(frozen=True)
class PutResult:
    name: str
    version: int
    tier: str
    created: bool


def user_arn(principal: Principal) -> str:
    return iam_arn(f"user/{principal.name}")


def secure_context(lookup: str, version: int) -> dict[str, str]:
    """What a SecureString ciphertext is bound to: moved to another parameter or version, it
    no longer opens."""
    return {"parameter": lookup, "version": str(version)}


def ciphertext_text(blob: bytes | memoryview) -> str:
    """How a SecureString value shows without decryption: its ciphertext, base64."""
    return base64.b64encode(bytes(blob)).decode("ascii")


def _tags_of(parameter: Parameter) -> list[tuple[str, str]]:
    return list(parameter.tags.values_list("key", "value"))


def _authorize_on(
    principal: Principal,
    action: str,
    parameter: Parameter | None,
    name: str,
    context: Mapping[str, Any] | None = None,
) -> None:
    tags = _tags_of(parameter) if parameter is not None else []
    authorize(principal, action, parameter_arn(name), {**tag_context(tags), **(context or {})})


def _request_tag_context(tags: Mapping[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {"aws:TagKeys": list(tags)} if tags else {}
    for key, value in tags.items():
        context[f"aws:RequestTag/{key}"] = value
    return context


def tags_checked(tags: Mapping[str, str] | Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """Tags as {key: value} from a mapping or AWS's [{"Key", "Value"}] list, by AWS's rules."""
    if tags is None:
        return {}
    pairs: list[tuple[object, object]]
    if isinstance(tags, Mapping):
        pairs = list(tags.items())
    else:
        pairs = []
        for item in tags:
            if not isinstance(item, Mapping) or "Key" not in item:
                raise ParameterValidationError('Each tag is {"Key": ..., "Value": ...}.')
            pairs.append((item["Key"], item.get("Value", "")))
    checked: dict[str, str] = {}
    for key, value in pairs:
        problem = tag_rules.tag_key_problem(key) or tag_rules.tag_value_problem(str(key), value)
        if problem:
            raise ParameterValidationError(f"{problem[:1].upper()}{problem[1:]}.", field="tags")
        checked[str(key)] = str(value)
    if len(checked) > tag_rules.MAX_TAGS:
        raise TooManyTagsError(f"A parameter holds at most {tag_rules.MAX_TAGS} tags.")
    return checked


# --- Put ------------------------------------------------------------------------------------


def parameter_put(
    *,
    principal: Principal,
    name: str,
    value: str,
    parameter_type: str | None = None,
    description: str | None = UNSET,
    key_id: str | None = UNSET,
    overwrite: bool = False,
    allowed_pattern: str | None = UNSET,
    tags: Mapping[str, str] | Iterable[Mapping[str, Any]] | None = None,
    tier: str | None = None,
    policies: str | None = UNSET,
    data_type: str | None = UNSET,
) -> PutResult:
    """Create a parameter or, with `overwrite`, write its next version.

    Arguments left UNSET keep the current version's setting on an overwrite.
    """
    parsed = rules.parse_name(name)
    if tags and overwrite:
        raise ParameterValidationError(
            "Invalid request: tags and overwrite can't be used together. To create a parameter "
            "with tags, please remove overwrite flag. To update tags for an existing parameter, "
            "please use AddTagsToResource or RemoveTagsFromResource.",
            field="tags",
        )
    wanted_tags = tags_checked(tags)
    if parameter_type is not None:
        rules.parse_type(parameter_type)
    # An overwrite is decided on the parameter's tags too (ssm:resourceTag/…), here before
    # any transaction so a denial is audited, and again under the row lock below.
    existing = Parameter.objects.filter(lookup=parsed.lookup).first()
    authorize(
        principal,
        PUT,
        parameter_arn(parsed.name),
        {
            **(tag_context(_tags_of(existing)) if existing is not None else {}),
            **_request_tag_context(wanted_tags),
        },
    )
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            with transaction.atomic():
                return _put_locked(
                    principal,
                    parsed,
                    value=value,
                    type_=parameter_type,
                    description=description,
                    key_id=key_id,
                    overwrite=overwrite,
                    allowed_pattern=allowed_pattern,
                    tags=wanted_tags,
                    tier=tier,
                    policies=policies,
                    data_type=data_type,
                )
        except IntegrityError:
            # A concurrent writer created the parameter first: as an overwrite, try again on
            # its row; otherwise the name is taken.
            if not overwrite or attempt == _CREATE_ATTEMPTS - 1:
                raise _already_exists() from None
    raise AssertionError("unreachable")


def _already_exists() -> ParameterAlreadyExists:
    return ParameterAlreadyExists(
        "The parameter already exists. To overwrite this value, set the overwrite option in "
        "the request to true."
    )


def _put_locked(
    principal: Principal,
    parsed: rules.ParsedName,
    *,
    value: str,
    type_: str | None,
    description: Any,
    key_id: Any,
    overwrite: bool,
    allowed_pattern: Any,
    tags: dict[str, str],
    tier: str | None,
    policies: Any,
    data_type: Any,
) -> PutResult:
    now = timezone.now()
    current = Parameter.objects.select_for_update().filter(lookup=parsed.lookup).first()
    if current is not None and not overwrite:
        raise _already_exists()
    if current is None and type_ is None:
        raise ParameterValidationError(
            "A parameter type is required when you create a parameter.", field="type"
        )
    if current is not None:
        # The row's tags, as they stand under the lock, decide an overwrite too.
        authorize(principal, PUT, parameter_arn(parsed.name), tag_context(_tags_of(current)))

    def kept(given: Any, attribute: str, default: Any) -> Any:
        if given is not UNSET:
            return given
        return getattr(current, attribute) if current is not None else default

    type_ = type_ or (current.type if current is not None else ParameterType.STRING)
    data_type_ = rules.parse_data_type(kept(data_type, "data_type", None), type_)
    description_ = rules.parse_description(kept(description, "description", ""))
    pattern = rules.parse_allowed_pattern(kept(allowed_pattern, "allowed_pattern", ""))
    rules.check_value(
        value=value, parameter_type=type_, data_type=data_type_, allowed_pattern=pattern
    )
    key_ref = kept(key_id, "key_id", "") or ""
    if key_ref and type_ != ParameterType.SECURE_STRING and key_id is not UNSET:
        raise ParameterValidationError(
            "KeyId is required for SecureString type parameter only.", field="key_id"
        )
    if type_ != ParameterType.SECURE_STRING:
        key_ref = ""
    if policies is UNSET:
        policy_list = policy_rules.kept_by_write(current.policies) if current is not None else []
    else:
        policy_list = policy_rules.parse_policies(policies, now=now)
    tier_ = rules.resolve_tier(
        requested=tier,
        current=current.tier if current is not None else None,
        size=rules.value_size(value),
        has_policies=bool(policy_list),
    )

    created = current is None
    if current is None:
        with transaction.atomic():  # a savepoint: losing the race on `lookup` raises here
            current = Parameter.objects.create(
                lookup=parsed.lookup,
                name=parsed.name,
                parent_path=parsed.parent_path,
                type=type_,
                version=0,
                last_modified_at=now,
                last_modified_user=user_arn(principal),
            )
        ParameterTag.objects.bulk_create(
            ParameterTag(parameter=current, key=key, value=tag_value)
            for key, tag_value in tags.items()
        )
    else:
        _make_room_for_a_version(current)

    version = current.version + 1
    stored_value, ciphertext = value, None
    if type_ == ParameterType.SECURE_STRING:
        key_ref = key_ref or kms.DEFAULT_ALIAS
        try:
            key = kms.key_resolve(key_ref)
        except kms.KeyNotFound as error:
            # SSM's own error for a key it cannot use, which SDKs know (not KMS's NotFound).
            raise InvalidKeyId(error.message) from None
        if key_ref != kms.DEFAULT_ALIAS and key != kms.default_key():
            authorize(principal, "kms:Encrypt", kms.key_arn(key))
        ciphertext = kms.value_encrypt(
            key=key,
            plaintext=value.encode("utf-8"),
            context=secure_context(parsed.lookup, version),
        )
        stored_value = ""
    ParameterVersion.objects.create(
        parameter=current,
        version=version,
        type=type_,
        data_type=data_type_,
        tier=tier_,
        value=stored_value,
        ciphertext=ciphertext,
        description=description_,
        allowed_pattern=pattern,
        key_id=key_ref,
        policies=policy_rules.public(policy_list),
        modified_at=now,
        modified_user=user_arn(principal),
    )
    Parameter.objects.filter(pk=current.pk).update(
        type=type_,
        data_type=data_type_,
        tier=tier_,
        description=description_,
        allowed_pattern=pattern,
        key_id=key_ref,
        version=version,
        policies=policy_list,
        next_policy_at=policy_rules.next_due(policy_list, last_modified=now),
        last_modified_at=now,
        last_modified_user=user_arn(principal),
    )
    event = "parameter.created" if created else "parameter.updated"
    emit(event, name=current.name, version=version, type=type_, tier=tier_, actor=principal.name)
    principal.record(
        PUT,
        resources=[parameter_arn(current.name)],
        params={
            "name": current.name,
            "type": type_,
            "version": version,
            "tier": tier_,
            "overwrite": overwrite,
            **({"tags": sorted(tags)} if tags else {}),
        },
    )
    return PutResult(name=current.name, version=version, tier=tier_, created=created)


def _make_room_for_a_version(parameter: Parameter) -> None:
    """Keep at most 100 versions: the oldest goes, unless a label holds it."""
    versions = ParameterVersion.objects.filter(parameter=parameter)
    if versions.count() < rules.VERSIONS_KEPT:
        return
    oldest = versions.order_by("version").first()
    if oldest is None:
        return
    if oldest.labels.exists():
        raise ParameterMaxVersionLimitExceeded(
            f"You attempted to create a new version of {parameter.name} by calling the "
            "PutParameter API with the overwrite flag. Version "
            f"{oldest.version}, the oldest version, can't be deleted because it has a label "
            "associated with it. Move the label to another version of the parameter, and try "
            "again."
        )
    oldest.delete()


# --- Delete ---------------------------------------------------------------------------------


def _not_found(name: str) -> ParameterNotFound:
    return ParameterNotFound(f"Parameter {name} not found.")


def parameter_delete(*, principal: Principal, name: str) -> None:
    lookup = rules.lookup_of(name) if isinstance(name, str) and name else ""
    if not lookup:
        raise ParameterValidationError("Parameter name must not be empty.", field="name")
    parameter = Parameter.objects.filter(lookup=lookup).first()
    _authorize_on(principal, DELETE, parameter, parameter.name if parameter else name)
    if parameter is None:
        raise _not_found(name)
    with transaction.atomic():
        deleted, _ = Parameter.objects.filter(pk=parameter.pk).delete()
        if not deleted:
            raise _not_found(name)
        emit(
            "parameter.deleted",
            name=parameter.name,
            version=parameter.version,
            type=parameter.type,
            tier=parameter.tier,
            actor=principal.name,
        )
        principal.record(
            DELETE, resources=[parameter_arn(parameter.name)], params={"name": parameter.name}
        )


@dataclass
class DeleteManyResult:
    deleted: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def parameters_delete(*, principal: Principal, names: Sequence[str]) -> DeleteManyResult:
    """Delete up to 10 parameters; unknown names come back as invalid, not as an error."""
    unique = list(dict.fromkeys(names))
    if not 1 <= len(unique) <= MAX_DELETE:
        raise ParameterValidationError(
            f"Give between 1 and {MAX_DELETE} parameter names to delete.", field="names"
        )
    found = {
        p.lookup: p
        for p in Parameter.objects.filter(lookup__in=[rules.lookup_of(n) for n in unique])
    }
    result = DeleteManyResult()
    targets: list[Parameter] = []
    for name in unique:
        parameter = found.get(rules.lookup_of(name))
        if parameter is None:
            result.invalid.append(name)
            continue
        _authorize_on(principal, DELETE_MANY, parameter, parameter.name)
        targets.append(parameter)
    with transaction.atomic():
        for parameter in targets:
            deleted, _ = Parameter.objects.filter(pk=parameter.pk).delete()
            if not deleted:
                result.invalid.append(parameter.name)
                continue
            result.deleted.append(parameter.name)
            emit(
                "parameter.deleted",
                name=parameter.name,
                version=parameter.version,
                type=parameter.type,
                tier=parameter.tier,
                actor=principal.name,
            )
        if result.deleted:
            principal.record(
                DELETE_MANY,
                resources=[parameter_arn(n) for n in result.deleted],
                params={"names": result.deleted},
            )
    return result


# --- Labels ---------------------------------------------------------------------------------


@dataclass
class LabelResult:
    version: int
    invalid: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _locked_parameter(name: str) -> Parameter:
    parameter = Parameter.objects.select_for_update().filter(lookup=rules.lookup_of(name)).first()
    if parameter is None:
        raise _not_found(name)
    return parameter


def _version_of(parameter: Parameter, version: int | None) -> ParameterVersion:
    number = parameter.version if version is None else version
    found = ParameterVersion.objects.filter(parameter=parameter, version=number).first()
    if found is None:
        raise ParameterVersionNotFound(
            f"Systems Manager could not find version {number} of {parameter.name}. Verify the "
            "version and try again."
        )
    return found


def _labels_checked(labels: Sequence[str]) -> list[str]:
    if not labels or len(labels) > rules.LABELS_PER_VERSION:
        raise ParameterValidationError(
            f"Give between 1 and {rules.LABELS_PER_VERSION} labels.", field="labels"
        )
    rules.check_label_lengths(list(labels))
    return list(dict.fromkeys(labels))


def parameter_label(
    *, principal: Principal, name: str, labels: Sequence[str], version: int | None = None
) -> LabelResult:
    """Attach labels to a version (the newest by default). A label on another version of the
    parameter moves here; labels breaking AWS's rules come back in `invalid`."""
    wanted = _labels_checked(labels)
    existing = Parameter.objects.filter(lookup=rules.lookup_of(name)).first()
    _authorize_on(principal, LABEL, existing, existing.name if existing else name)
    with transaction.atomic():
        parameter = _locked_parameter(name)
        target = _version_of(parameter, version)
        result = LabelResult(version=target.version)
        valid = []
        for label in wanted:
            if rules.label_problem(label):
                result.invalid.append(label)
            else:
                valid.append(label)
        on_target = set(target.labels.values_list("name", flat=True))
        if len(on_target | set(valid)) > rules.LABELS_PER_VERSION:
            raise ParameterVersionLabelLimitExceeded(
                f"A parameter version can have maximum {rules.LABELS_PER_VERSION} labels. Move "
                "one or more labels to another version and try again."
            )
        moved = [label for label in valid if label not in on_target]
        if moved:
            ParameterLabel.objects.filter(parameter=parameter, name__in=moved).delete()
            ParameterLabel.objects.bulk_create(
                ParameterLabel(parameter=parameter, version=target, name=label) for label in moved
            )
        if valid:
            emit(
                "parameter.labeled",
                name=parameter.name,
                version=target.version,
                labels=valid,
                actor=principal.name,
            )
            principal.record(
                LABEL,
                resources=[parameter_arn(parameter.name)],
                params={"name": parameter.name, "version": target.version, "labels": valid},
            )
    return result


def parameter_unlabel(
    *, principal: Principal, name: str, version: int, labels: Sequence[str]
) -> LabelResult:
    """Remove labels from a version; labels it does not carry come back in `invalid`."""
    wanted = _labels_checked(labels)
    existing = Parameter.objects.filter(lookup=rules.lookup_of(name)).first()
    _authorize_on(principal, UNLABEL, existing, existing.name if existing else name)
    with transaction.atomic():
        parameter = _locked_parameter(name)
        target = _version_of(parameter, version)
        on_target = set(target.labels.values_list("name", flat=True))
        removed = [label for label in wanted if label in on_target]
        result = LabelResult(
            version=target.version,
            removed=removed,
            invalid=[label for label in wanted if label not in on_target],
        )
        if removed:
            ParameterLabel.objects.filter(version=target, name__in=removed).delete()
            emit(
                "parameter.unlabeled",
                name=parameter.name,
                version=target.version,
                labels=removed,
                actor=principal.name,
            )
            principal.record(
                UNLABEL,
                resources=[parameter_arn(parameter.name)],
                params={"name": parameter.name, "version": target.version, "labels": removed},
            )
    return result


# --- Tags -----------------------------------------------------------------------------------


def parameter_tags_add(
    *,
    principal: Principal,
    name: str,
    tags: Mapping[str, str] | Iterable[Mapping[str, Any]],
) -> dict[str, str]:
    wanted = tags_checked(tags)
    if not wanted:
        raise ParameterValidationError("Give at least one tag to add.", field="tags")
    existing = Parameter.objects.filter(lookup=rules.lookup_of(name)).first()
    _authorize_on(
        principal,
        ADD_TAGS,
        existing,
        existing.name if existing else name,
        _request_tag_context(wanted),
    )
    with transaction.atomic():
        parameter = _locked_parameter(name)
        merged = tags_merged(
            parameter.name, dict(_tags_of(parameter)), wanted, error=TooManyTagsError
        )
        for key, value in wanted.items():
            ParameterTag.objects.update_or_create(
                parameter=parameter, key=key, defaults={"value": value}
            )
        principal.record(
            ADD_TAGS,
            resources=[parameter_arn(parameter.name)],
            params={"name": parameter.name, "keys": sorted(wanted)},
        )
    return merged


def parameter_tags_remove(
    *, principal: Principal, name: str, keys: Iterable[str]
) -> dict[str, str]:
    unwanted = [str(key) for key in keys]
    if not unwanted:
        raise ParameterValidationError("Give at least one tag key to remove.", field="tags")
    existing = Parameter.objects.filter(lookup=rules.lookup_of(name)).first()
    _authorize_on(
        principal,
        REMOVE_TAGS,
        existing,
        existing.name if existing else name,
        {"aws:TagKeys": unwanted},
    )
    with transaction.atomic():
        parameter = _locked_parameter(name)
        ParameterTag.objects.filter(parameter=parameter, key__in=unwanted).delete()
        principal.record(
            REMOVE_TAGS,
            resources=[parameter_arn(parameter.name)],
            params={"name": parameter.name, "keys": sorted(unwanted)},
        )
        return dict(_tags_of(parameter))


# --- Policies (run by the scheduled task, as the system) ------------------------------------


def policy_due_times(parameter: Parameter) -> datetime | None:
    return policy_rules.next_due(parameter.policies, last_modified=parameter.last_modified_at)
