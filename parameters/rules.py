"""AWS Parameter Store's rules for names, values, patterns, data types, tiers and labels.

Pure functions: they take what a writer sent and return it checked (or raise with AWS's
error type and a message a person can act on). Every face goes through them via the services.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parameters.exceptions import (
    HierarchyLevelLimitExceeded,
    InvalidAllowedPattern,
    ParameterPatternMismatch,
    ParameterValidationError,
    UnsupportedParameterType,
)
from parameters.models import DataType, ParameterType, Tier

NAME_MAX = 1011  # AWS keeps room in its 2048 for the ARN around the name
MAX_LEVELS = 15
VALUE_MAX_STANDARD = 4096
VALUE_MAX_ADVANCED = 8192
DESCRIPTION_MAX = 1024
PATTERN_MAX = 1024
LABEL_MAX = 100
LABELS_PER_VERSION = 10
VERSIONS_KEPT = 100
INTELLIGENT_TIERING = "Intelligent-Tiering"
TIERS = (Tier.STANDARD.value, Tier.ADVANCED.value, INTELLIGENT_TIERING)

_SEGMENT = re.compile(r"[a-zA-Z0-9_.\-]+")
_LABEL = re.compile(r"[a-zA-Z0-9_.\-]+")
_IMAGE_ID = re.compile(r"ami-[0-9a-f]{8}(?:[0-9a-f]{9})?")
_RESERVED_PREFIXES = ("aws", "ssm")

NAME_CHARACTERS_MESSAGE = (
    'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive). If formed as a '
    "path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as "
    "a mix of letters, numbers and the following 3 symbols .-_"
)
PREFIX_MESSAGE = 'Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive).'


@dataclass(frozen=True)
class ParsedName:
    name: str  # as given
    lookup: str  # how it is found: "/a" and "a" are the same top-level parameter
    parent_path: str  # "/" at the top level
    levels: int


def parse_name(raw: object, *, for_write: bool = True) -> ParsedName:
    """A parameter name checked by AWS's rules (reads check the shape only: a name that could
    never be written is simply not found)."""
    if not isinstance(raw, str) or not raw:
        raise ParameterValidationError("Parameter name must not be empty.", field="name")
    name = raw
    if len(name) > NAME_MAX:
        raise ParameterValidationError(
            f"Parameter name must be at most {NAME_MAX} characters long.", field="name"
        )
    hierarchical = "/" in name.lstrip("/") or (name.startswith("/") and name.count("/") > 1)
    if "/" in name and not name.startswith("/"):
        raise ParameterValidationError(
            "Parameter name must be a fully qualified name: a hierarchical name begins with "
            '"/" (for example /app/prod/db-url).',
            field="name",
        )
    segments = name[1:].split("/") if name.startswith("/") else [name]
    if any(not _SEGMENT.fullmatch(segment) for segment in segments):
        if name.endswith("/") or "//" in name:
            message = "Parameter name must not end with a slash or hold an empty level (//)."
        else:
            message = NAME_CHARACTERS_MESSAGE
        raise ParameterValidationError(message, field="name")
    if for_write:
        first = segments[0].lower()
        if hierarchical and first == "aws":
            raise ParameterValidationError(
                f"No access to reserved parameter name: {name}.", field="name"
            )
        if first.startswith(_RESERVED_PREFIXES):
            raise ParameterValidationError(PREFIX_MESSAGE, field="name")
    levels = len(segments)
    if levels > MAX_LEVELS:
        raise HierarchyLevelLimitExceeded(
            f"Parameter name {name} has {levels} levels of hierarchy; the limit is "
            f"{MAX_LEVELS}. Use fewer levels."
        )
    if hierarchical:
        lookup = name
        parent = name.rsplit("/", 1)[0] or "/"
    else:
        lookup = name.lstrip("/")
        parent = "/"
    return ParsedName(name=name, lookup=lookup, parent_path=parent, levels=levels)


def lookup_of(raw: str) -> str:
    """How a name is found, without judging it (reads of names that cannot exist miss)."""
    return raw if raw.count("/") > 1 else raw.lstrip("/")


def parse_path(raw: object) -> str:
    """A path for by-path reads: "/" or "/a/b" (a trailing slash is forgiven)."""
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise ParameterValidationError(
            'The parameter path must begin with "/" (for example /app/prod).', field="path"
        )
    path = raw.rstrip("/") or "/"
    if path != "/":
        segments = path[1:].split("/")
        if any(not _SEGMENT.fullmatch(segment) for segment in segments):
            raise ParameterValidationError(
                "The parameter path is not valid: each level is letters, digits and .-_ "
                "separated by single slashes.",
                field="path",
            )
        if len(segments) > MAX_LEVELS:
            raise HierarchyLevelLimitExceeded(
                f"The path {path} is deeper than {MAX_LEVELS} levels of hierarchy."
            )
    return path


def parse_type(raw: object) -> str:
    if raw not in ParameterType.values:
        raise UnsupportedParameterType(
            f"The parameter type {raw!r} is not supported: use String, StringList or SecureString."
        )
    return str(raw)


def parse_data_type(raw: object, parameter_type: str) -> str:
    data_type = DataType.TEXT.value if raw in (None, "") else raw
    if data_type not in DataType.values:
        raise ParameterValidationError(
            f"The following data type is not supported: {data_type} (Data type names are all "
            "lowercase.)",
            field="data_type",
        )
    if data_type == DataType.EC2_IMAGE and parameter_type != ParameterType.STRING:
        raise ParameterValidationError(
            "The aws:ec2:image data type is only for String parameters.", field="data_type"
        )
    return str(data_type)


def parse_description(raw: object) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ParameterValidationError("The description must be text.", field="description")
    if len(raw) > DESCRIPTION_MAX:
        raise ParameterValidationError(
            f"The description must be at most {DESCRIPTION_MAX} characters long.",
            field="description",
        )
    return raw


def parse_allowed_pattern(raw: object) -> str:
    """An AllowedPattern (Terraform always sends one, maybe empty: empty means none)."""
    if raw in (None, ""):
        return ""
    if not isinstance(raw, str):
        raise InvalidAllowedPattern("The allowed pattern must be a regular expression.")
    if len(raw) > PATTERN_MAX:
        raise ParameterValidationError(
            f"The allowed pattern must be at most {PATTERN_MAX} characters long.",
            field="allowed_pattern",
        )
    try:
        re.compile(raw)
    except re.error as error:
        raise InvalidAllowedPattern(
            f"The allowed pattern {raw} is not a valid regular expression: {error}."
        ) from None
    return raw


def check_value(*, value: object, parameter_type: str, data_type: str, allowed_pattern: str) -> str:
    if not isinstance(value, str) or value == "":
        raise ParameterValidationError("The parameter value must not be empty.", field="value")
    if parameter_type == ParameterType.STRING_LIST and any(item == "" for item in value.split(",")):
        raise ParameterValidationError(
            "A StringList is comma-separated values; none of them may be empty.", field="value"
        )
    if data_type == DataType.EC2_IMAGE and not _IMAGE_ID.fullmatch(value):
        raise ParameterValidationError(
            "A parameter of data type aws:ec2:image holds an image id such as "
            "ami-0123456789abcdef0.",
            field="value",
        )
    if allowed_pattern and re.search(allowed_pattern, value) is None:
        # Never echo the value: it may be a secret.
        raise ParameterPatternMismatch(
            f"Parameter value, cannot be validated against allowedPattern: {allowed_pattern}"
        )
    return value


def value_size(value: str) -> int:
    return len(value.encode("utf-8"))


def resolve_tier(*, requested: object, current: str | None, size: int, has_policies: bool) -> str:
    """The tier a write ends in. Omitted: the current tier (Standard when new).
    Intelligent-Tiering picks the smallest that fits; Advanced never goes back to Standard."""
    if requested not in (None, "") and requested not in TIERS:
        raise ParameterValidationError(
            # Terraform falls back to the default tier when the text says "Tier is not supported".
            f"Tier is not supported: {requested}. Use Standard, Advanced or Intelligent-Tiering.",
            field="tier",
        )
    if requested in (None, ""):
        tier = current or Tier.STANDARD.value
    elif requested == INTELLIGENT_TIERING:
        needs_advanced = size > VALUE_MAX_STANDARD or has_policies
        tier = Tier.ADVANCED.value if needs_advanced or current == Tier.ADVANCED else "Standard"
    else:
        tier = str(requested)
    if current == Tier.ADVANCED and tier == Tier.STANDARD:
        raise ParameterValidationError(
            "This parameter uses the advanced-parameter tier. You can't downgrade a parameter "
            "from the advanced-parameter tier to the standard-parameter tier. If necessary, "
            "you can delete the advanced parameter and recreate it as a standard parameter.",
            field="tier",
        )
    if tier == Tier.STANDARD and size > VALUE_MAX_STANDARD:
        raise ParameterValidationError(
            f"Standard tier parameters support a maximum parameter value of {VALUE_MAX_STANDARD} "
            "characters. To create a larger parameter value, upgrade the parameter to use the "
            "advanced-parameter tier.",
            field="value",
        )
    if size > VALUE_MAX_ADVANCED:
        raise ParameterValidationError(
            f"Advanced tier parameters support a maximum parameter value of {VALUE_MAX_ADVANCED} "
            "characters.",
            field="value",
        )
    if tier == Tier.STANDARD and has_policies:
        raise ParameterValidationError(
            "Parameter policies are supported only in the advanced tier: set the tier to "
            "Advanced or Intelligent-Tiering.",
            field="policies",
        )
    return tier


def label_problem(label: object) -> str | None:
    """Why AWS would put a label in InvalidLabels (None when it is fine)."""
    if not isinstance(label, str) or not label:
        return "a label must not be empty"
    if not _LABEL.fullmatch(label):
        return "a label holds only letters, digits, periods, hyphens and underscores"
    if label[0].isdigit():
        return "a label can't begin with a number"
    if label.lower().startswith(_RESERVED_PREFIXES):
        return 'a label can\'t begin with "aws" or "ssm"'
    return None


def check_label_lengths(labels: list[str]) -> None:
    """Labels over 100 characters are a ValidationException, not an invalid label."""
    for label in labels:
        if isinstance(label, str) and len(label) > LABEL_MAX:
            raise ParameterValidationError(
                f"Label {label[:20]}… is longer than {LABEL_MAX} characters.", field="labels"
            )


@dataclass(frozen=True)
class Selector:
    lookup: str
    name: str
    version: int | None = None
    label: str | None = None

    @property
    def text(self) -> str:
        """AWS's `Selector` field: ":3" or ":label"."""
        if self.version is not None:
            return f":{self.version}"
        return f":{self.label}" if self.label else ""


def parse_selector(raw: object) -> Selector:
    """`name`, `name:version` or `name:label`."""
    if not isinstance(raw, str) or not raw:
        raise ParameterValidationError("Parameter name must not be empty.", field="name")
    name, sep, suffix = raw.partition(":")
    if sep and (not suffix or ":" in suffix):
        raise ParameterValidationError(
            f"{raw} is not a valid selector: use name, name:version or name:label.",
            field="name",
        )
    if not name:
        raise ParameterValidationError("Parameter name must not be empty.", field="name")
    if not sep:
        return Selector(lookup=lookup_of(name), name=name)
    if suffix.isdigit():
        return Selector(lookup=lookup_of(name), name=name, version=int(suffix))
    return Selector(lookup=lookup_of(name), name=name, label=suffix)
