"""Shapes of the Parameter Store API: input checked here for form, by the services for meaning.

Field names are AWS's, in snake_case (`last_modified_date`, `invalid_parameters`), so a reader
of the AWS documentation finds their way.
"""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bosun.lib.api import StrictBoolean
from parameters import rules, selectors
from parameters.models import DataType, ParameterNotice, ParameterType, Tier
from parameters.transfer import FORMATS

TYPES = ParameterType.values
FILTER_TIERS = Tier.values


def _text(**kwargs: Any) -> serializers.CharField:
    # Names, values and patterns are taken as sent: trimming would change what is stored.
    return serializers.CharField(trim_whitespace=False, **kwargs)


def _many(child: serializers.Field, **kwargs: Any) -> serializers.ListField:
    return serializers.ListField(child=child, required=False, **kwargs)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "object", "additionalProperties": {"type": "string"}},
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"Key": {"type": "string"}, "Value": {"type": "string"}},
                    "required": ["Key"],
                },
            },
        ],
        "description": '{"Env": "dev"} or AWS\'s [{"Key": "Env", "Value": "dev"}].',
    }
)
class TagsField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        data = super().to_internal_value(data)
        if not isinstance(data, dict | list):
            raise serializers.ValidationError(
                'Give tags as {"Key": "Value"} or [{"Key": ..., "Value": ...}].'
            )
        return data


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        ],
        "description": (
            'AWS\'s policies JSON text, or the list itself: [{"Type": "Expiration", '
            '"Version": "1.0", "Attributes": {"Timestamp": "…"}}]. [] removes them.'
        ),
    }
)
class PoliciesField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> str:
        data = super().to_internal_value(data)
        if isinstance(data, str):
            return data
        if isinstance(data, list | dict):
            return json.dumps(data)
        raise serializers.ValidationError("Give policies as JSON text or a list of policies.")


# --- Input ----------------------------------------------------------------------------------


class DescribeQuery(serializers.Serializer):
    name_contains = _text(required=False, help_text="Names containing this text.")
    name_begins_with = _text(required=False, help_text="Names beginning with this text.")
    path = _text(required=False, help_text="Parameters below this path (with `recursive`).")
    recursive = StrictBoolean(
        required=False, default=False, help_text="With `path`: every level below it."
    )
    type = _many(serializers.ChoiceField(choices=TYPES))
    tier = _many(serializers.ChoiceField(choices=FILTER_TIERS))
    data_type = _many(serializers.ChoiceField(choices=DataType.values))
    key_id = _many(_text())
    label = _many(_text(), help_text="Parameters whose newest version carries this label.")
    tag = _many(_text(), help_text="`Key` (has the tag) or `Key=Value`; repeat to combine.")
    parameter_filters = _text(
        required=False,
        help_text='AWS\'s ParameterFilters as JSON text: [{"Key", "Option", "Values"}].',
    )
    max_results = serializers.IntegerField(
        required=False, min_value=1, max_value=selectors.MAX_DESCRIBE_PAGE
    )
    next_token = _text(required=False)

    def validate_tag(self, value: list[str]) -> list[tuple[str, str | None]]:
        parsed = []
        for item in value:
            key, sep, tag_value = item.partition("=")
            if not key:
                raise serializers.ValidationError("Give a tag as Key or Key=Value.")
            parsed.append((key, tag_value if sep else None))
        return parsed

    def validate_parameter_filters(self, value: str) -> Any:
        try:
            filters = json.loads(value)
        except ValueError:
            raise serializers.ValidationError(
                'Give ParameterFilters as a JSON array: [{"Key": ..., "Values": [...]}].'
            ) from None
        if not isinstance(filters, list):
            raise serializers.ValidationError("ParameterFilters is a JSON array.")
        return filters


class PutInput(serializers.Serializer):
    """Omitted settings keep the current version's on an overwrite."""

    name = _text()
    value = _text()
    type = serializers.ChoiceField(choices=TYPES, required=False)
    description = _text(required=False, allow_blank=True)
    key_id = _text(required=False, allow_blank=True)
    overwrite = StrictBoolean(required=False, default=False)
    allowed_pattern = _text(required=False, allow_blank=True)
    tags = TagsField(required=False)
    tier = serializers.ChoiceField(choices=rules.TIERS, required=False)
    policies = PoliciesField(required=False)
    data_type = serializers.ChoiceField(choices=DataType.values, required=False)


class NameQuery(serializers.Serializer):
    name = _text()


class ValueQuery(serializers.Serializer):
    name = _text(help_text="`name`, `name:version` or `name:label`.")
    decrypt = StrictBoolean(required=False, default=False)


class ValuesQuery(serializers.Serializer):
    name = serializers.ListField(
        child=_text(),
        min_length=1,
        max_length=selectors.MAX_GET,
        help_text="Repeat for each parameter (name, name:version or name:label).",
    )
    decrypt = StrictBoolean(required=False, default=False)


class PathQuery(serializers.Serializer):
    path = _text()
    recursive = StrictBoolean(required=False, default=False)
    decrypt = StrictBoolean(required=False, default=False)
    type = _many(serializers.ChoiceField(choices=TYPES))
    key_id = _many(_text())
    label = _many(_text())
    max_results = serializers.IntegerField(
        required=False, min_value=1, max_value=selectors.MAX_PATH_PAGE
    )
    next_token = _text(required=False)


class HistoryQuery(serializers.Serializer):
    name = _text()
    decrypt = StrictBoolean(required=False, default=False)
    max_results = serializers.IntegerField(
        required=False, min_value=1, max_value=selectors.MAX_HISTORY_PAGE
    )
    next_token = _text(required=False)


class DeleteManyInput(serializers.Serializer):
    names = serializers.ListField(child=_text(), help_text="1 to 10 parameter names.")


class LabelInput(serializers.Serializer):
    name = _text()
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="The newest version when omitted."
    )
    labels = serializers.ListField(child=_text(allow_blank=True))


class UnlabelInput(serializers.Serializer):
    name = _text()
    version = serializers.IntegerField(min_value=1)
    labels = serializers.ListField(child=_text(allow_blank=True))


class ParameterTagsInput(serializers.Serializer):
    tags = TagsField()


class TagKeysQuery(serializers.Serializer):
    name = _text()
    key = serializers.ListField(
        child=_text(allow_blank=True), min_length=1, help_text="Repeat for each tag key."
    )


class ExportQuery(serializers.Serializer):
    path = _text()
    format = serializers.ChoiceField(choices=FORMATS, default="json")
    decrypt = StrictBoolean(
        required=False,
        default=False,
        help_text="Include SecureStrings in plaintext (each read is audited); otherwise "
        "they are left out and counted in X-Bosun-Skipped.",
    )


class ImportInput(serializers.Serializer):
    path = _text()
    content = _text(help_text="The file: a JSON object of names to values, or KEY=value lines.")
    format = serializers.ChoiceField(choices=FORMATS, default="json")
    type = serializers.ChoiceField(choices=TYPES, default=ParameterType.STRING.value)
    overwrite = StrictBoolean(required=False, default=False)
    key_id = _text(required=False, allow_blank=True)


class NoticesQuery(serializers.Serializer):
    max_results = serializers.IntegerField(required=False, min_value=1, max_value=50, default=50)


# --- Output ---------------------------------------------------------------------------------


class ParameterPolicySerializer(serializers.Serializer):
    policy_type = serializers.CharField(source="PolicyType")
    policy_text = serializers.CharField(source="PolicyText")
    policy_status = serializers.CharField(source="PolicyStatus")


class ParameterValueSerializer(serializers.Serializer):
    """A value: a SecureString's is its ciphertext (base64) unless decrypted."""

    name = serializers.CharField()
    type = serializers.CharField()
    value = serializers.CharField()
    version = serializers.IntegerField()
    selector = serializers.CharField()
    last_modified_date = serializers.DateTimeField(source="last_modified_at")
    arn = serializers.CharField()
    data_type = serializers.CharField()


class ParameterMetadataSerializer(serializers.Serializer):
    name = serializers.CharField(source="parameter.name")
    arn = serializers.CharField()
    type = serializers.CharField(source="parameter.type")
    key_id = serializers.CharField(source="parameter.key_id")
    last_modified_date = serializers.DateTimeField(source="parameter.last_modified_at")
    last_modified_user = serializers.CharField(source="parameter.last_modified_user")
    description = serializers.CharField(source="parameter.description")
    allowed_pattern = serializers.CharField(source="parameter.allowed_pattern")
    version = serializers.IntegerField(source="parameter.version")
    tier = serializers.CharField(source="parameter.tier")
    policies = ParameterPolicySerializer(many=True)
    data_type = serializers.CharField(source="parameter.data_type")


class HistoryEntrySerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(source="row.type")
    key_id = serializers.CharField(source="row.key_id")
    last_modified_date = serializers.DateTimeField(source="row.modified_at")
    last_modified_user = serializers.CharField(source="row.modified_user")
    description = serializers.CharField(source="row.description")
    value = serializers.CharField()
    allowed_pattern = serializers.CharField(source="row.allowed_pattern")
    version = serializers.IntegerField(source="row.version")
    labels = serializers.ListField(child=serializers.CharField())
    tier = serializers.CharField(source="row.tier")
    policies = ParameterPolicySerializer(source="row.policies", many=True)
    data_type = serializers.CharField(source="row.data_type")


class DescribeResponse(serializers.Serializer):
    results = ParameterMetadataSerializer(many=True)
    next_token = serializers.CharField(allow_null=True)


class PutResponse(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    tier = serializers.CharField()


class ValuesResponse(serializers.Serializer):
    parameters = ParameterValueSerializer(many=True)
    invalid_parameters = serializers.ListField(child=serializers.CharField())


class PathResponse(serializers.Serializer):
    parameters = ParameterValueSerializer(many=True)
    next_token = serializers.CharField(allow_null=True)


class HistoryResponse(serializers.Serializer):
    parameters = HistoryEntrySerializer(many=True)
    next_token = serializers.CharField(allow_null=True)


class ParameterDeleteResponse(serializers.Serializer):
    deleted = serializers.ListField(child=serializers.CharField())
    invalid_parameters = serializers.ListField(child=serializers.CharField())


class LabelResponse(serializers.Serializer):
    invalid_labels = serializers.ListField(child=serializers.CharField())
    version = serializers.IntegerField()


class UnlabelResponse(serializers.Serializer):
    removed_labels = serializers.ListField(child=serializers.CharField())
    invalid_labels = serializers.ListField(child=serializers.CharField())


class ParameterTagsResponse(serializers.Serializer):
    name = serializers.CharField()
    tags = serializers.DictField(child=serializers.CharField())


class ImportLineSerializer(serializers.Serializer):
    name = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["created", "updated", "failed"])
    version = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


class ImportResponse(serializers.Serializer):
    results = ImportLineSerializer(many=True)
    failed = serializers.IntegerField()


class ParameterNoticeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ParameterNotice
        fields = ["parameter_name", "kind", "message", "version", "created_at"]


class ParameterNoticesResponse(serializers.Serializer):
    results = ParameterNoticeSerializer(many=True)
