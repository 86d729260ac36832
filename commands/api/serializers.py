"""Shapes of the documents and Run Command API: input checked here for form, by the services
for meaning (parameter values against the document, targets, rates, timeouts).

Field names are AWS's, in snake_case (`document_version`, `max_concurrency`), so a reader of
the AWS documentation finds their way; AWS's `Targets` keep their `Key`/`Values`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from bosun.lib.api import StrictBoolean
from commands import rates
from commands.api.common import MAX_PAGE
from commands.models import (
    Command,
    CommandStatus,
    Document,
    DocumentFormat,
    DocumentTag,
    DocumentVersion,
)
from commands.output import STREAMS
from commands.selectors import DEFAULT, LATEST
from commands.services.send import DEFAULT_TIMEOUT_SECONDS

FORMATS = DocumentFormat.values
# Documents and commands, as AWS reports them: a stored document is always usable.
ACTIVE = "Active"
HASH_TYPE = "Sha256"
BOSUN = "Bosun"  # the owner of the built-ins
SELF = "Self"  # the owner of this installation's own documents
# The tag columns' widths (the service does not check tags yet).
_TAG_KEY_CHARS = int(DocumentTag._meta.get_field("key").max_length or 128)
_TAG_VALUE_CHARS = int(DocumentTag._meta.get_field("value").max_length or 256)


def _text(**kwargs: Any) -> serializers.CharField:
    # Names, contents and values are taken as sent: trimming would change what is stored.
    return serializers.CharField(trim_whitespace=False, **kwargs)


def _page_size() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE, help_text=f"1 to {MAX_PAGE}."
    )


def _next_token() -> serializers.CharField:
    return _text(required=False, help_text="The `next_token` of the previous page.")


def _version(**kwargs: Any) -> serializers.CharField:
    return _text(help_text=f"{DEFAULT}, {LATEST}, a version number or a version name.", **kwargs)


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
        "description": '{"Team": "ops"} or AWS\'s [{"Key": "Team", "Value": "ops"}].',
    }
)
class DocumentTagsField(serializers.JSONField):
    """Tags as {key: value}, whichever of the two forms was sent."""

    def to_internal_value(self, data: Any) -> dict[str, str]:
        data = super().to_internal_value(data)
        if isinstance(data, list):
            if not all(isinstance(item, dict) and set(item) <= {"Key", "Value"} for item in data):
                raise serializers.ValidationError('Give each tag as {"Key": ..., "Value": ...}.')
            data = {item.get("Key"): item.get("Value", "") for item in data}
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                'Give tags as {"Key": "Value"} or [{"Key": ..., "Value": ...}].'
            )
        for key, value in data.items():
            if not isinstance(key, str) or not 1 <= len(key) <= _TAG_KEY_CHARS:
                raise serializers.ValidationError(
                    f"A tag key is text of 1 to {_TAG_KEY_CHARS} characters."
                )
            if not isinstance(value, str) or len(value) > _TAG_VALUE_CHARS:
                raise serializers.ValidationError(
                    f"Tag {key}: a value is text of at most {_TAG_VALUE_CHARS} characters."
                )
        return data


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
        "description": 'AWS\'s form: {"commands": ["uptime", "df -h"], "workingDirectory": '
        '["/tmp"]}. Numbers and true/false are taken as their text.',
    }
)
class CommandParametersField(serializers.Field):
    """{name: [text, ...]}: the values are checked against the document by the service."""

    default_error_messages = {
        "not_a_dict": 'Give parameters as {{"name": ["value", ...]}}.',
    }

    def to_internal_value(self, data: Any) -> dict[str, list[str]]:
        if not isinstance(data, dict):
            self.fail("not_a_dict")
        values: dict[str, list[str]] = {}
        for name, given in data.items():
            if not isinstance(given, list) or not all(
                isinstance(item, str | int | float | bool) for item in given
            ):
                raise serializers.ValidationError(
                    {name: ['Give a list of text values: ["value", ...].']}
                )
            values[name] = [_as_text(item) for item in given]
        return values

    def to_representation(self, value: Any) -> Any:
        return value


def _as_text(item: str | int | float | bool) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    return str(item)


class CommandTargetSerializer(serializers.Serializer):
    """AWS's Target: `InstanceIds`, `tag:<key>`, `tag-key` or `resource-groups:Name`."""

    Key = _text()
    Values = serializers.ListField(child=_text(), min_length=1)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError('A target is {"Key": ..., "Values": [...]}.')
        unknown = sorted(set(data) - {"Key", "Values"})
        if unknown:
            raise serializers.ValidationError(
                {unknown[0]: ['A target has only "Key" and "Values".']}
            )
        return super().to_internal_value(data)


# --- Input: documents -----------------------------------------------------------------------


class DocumentsQuery(serializers.Serializer):
    search = _text(required=False, help_text="Names containing this text (any case).")
    owner = serializers.ChoiceField(
        choices=[BOSUN, SELF],
        required=False,
        help_text="Bosun: the built-in documents; Self: this installation's own.",
    )
    tag = serializers.ListField(
        child=_text(), required=False, help_text="Key=Value; repeat to require several."
    )
    max_results = _page_size()
    next_token = _next_token()

    def validate_tag(self, value: list[str]) -> list[tuple[str, str]]:
        parsed = []
        for item in value:
            key, sep, tag_value = item.partition("=")
            if not key or not sep:
                raise serializers.ValidationError("Give a tag as Key=Value.")
            parsed.append((key, tag_value))
        return parsed


class DocumentCreateInput(serializers.Serializer):
    name = _text(help_text="3 to 128 letters, digits, _ - and .; not AWS-… or Bosun-….")
    content = _text(help_text="The document (schema 2.2, Command), as JSON or YAML text.")
    document_format = serializers.ChoiceField(
        choices=FORMATS, default=DocumentFormat.JSON.value, help_text="The content's format."
    )
    version_name = _text(required=False, default="", allow_blank=True)
    tags = DocumentTagsField(required=False)


class DocumentUpdateInput(serializers.Serializer):
    content = _text()
    document_format = serializers.ChoiceField(
        choices=FORMATS, default=DocumentFormat.JSON.value, help_text="The content's format."
    )
    document_version = _text(
        required=False,
        default=LATEST,
        help_text=f"The version this edit starts from: {LATEST} or the latest's number; an "
        "edit of an older version is refused, so two editors cannot overwrite each other.",
    )
    version_name = _text(required=False, default="", allow_blank=True)


class DocumentGetQuery(serializers.Serializer):
    version = _version(required=False)
    format = serializers.ChoiceField(
        choices=FORMATS,
        required=False,
        help_text="The content in this format (converted when stored in the other one).",
    )


class DocumentVersionQuery(serializers.Serializer):
    version = _version(required=False)


class DocumentDeleteQuery(serializers.Serializer):
    version = _text(
        required=False,
        help_text="Delete only this version (a number, or a version name); never the default.",
    )


class DefaultVersionInput(serializers.Serializer):
    document_version = _text(help_text=f"A version number or {LATEST}.")


class PageQuery(serializers.Serializer):
    max_results = _page_size()
    next_token = _next_token()


# --- Input: commands ------------------------------------------------------------------------


class SendInput(serializers.Serializer):
    document_name = _text(help_text="AWS-RunShellScript, Bosun-RunShellScript or your own.")
    document_version = _version(required=False)
    parameters = CommandParametersField(required=False, default=dict)
    targets = serializers.ListField(
        child=CommandTargetSerializer(),
        required=False,
        help_text='AWS\'s Targets: [{"Key": "tag:Env", "Values": ["dev"]}] (or instance_ids).',
    )
    instance_ids = serializers.ListField(
        child=_text(), required=False, help_text="At most 50 node ids (or targets)."
    )
    max_concurrency = _text(
        required=False,
        default=rates.DEFAULT_MAX_CONCURRENCY,
        help_text="Nodes at once: a number (1 or more) or a percentage of the targets.",
    )
    max_errors = _text(
        required=False,
        default=rates.DEFAULT_MAX_ERRORS,
        help_text="Errors tolerated before sending stops: a number or a percentage.",
    )
    timeout_seconds = serializers.IntegerField(
        required=False,
        default=DEFAULT_TIMEOUT_SECONDS,
        help_text="The time for the command to start on each node (30 to 2592000 seconds).",
    )
    comment = _text(required=False, default="", allow_blank=True, help_text="At most 100.")


class CommandsQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=CommandStatus.values, required=False)
    document_name = _text(required=False)
    node_id = _text(required=False, help_text="Commands sent to this node.")
    requested_by = _text(required=False, help_text="The sender's user name.")
    search = _text(required=False, help_text="The start of a command id, or comment text.")
    max_results = _page_size()
    next_token = _next_token()


class CancelInput(serializers.Serializer):
    instance_ids = serializers.ListField(
        child=_text(), required=False, help_text="Only on these nodes; all when omitted."
    )


class InvocationsQuery(serializers.Serializer):
    details = StrictBoolean(
        required=False, default=False, help_text="Include each step with its inline output."
    )
    max_results = _page_size()
    next_token = _next_token()


class InvocationQuery(serializers.Serializer):
    step = _text(required=False, help_text="Only this step (its name in the document).")


class OutputQuery(serializers.Serializer):
    step = _text(required=False, help_text="The step's name; required when there are several.")
    stream = serializers.ChoiceField(choices=STREAMS, default="stdout")


# --- Output: documents ----------------------------------------------------------------------


class _DocumentFields(serializers.Serializer):
    """What every rendering of a document says about the document itself."""

    owner = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()

    def document(self, instance: Any) -> Document:
        return instance if isinstance(instance, Document) else instance.document

    def get_owner(self, instance: Any) -> str:
        return BOSUN if self.document(instance).is_builtin else SELF

    def get_created_by(self, instance: Any) -> str | None:
        user = self.document(instance).created_by
        return user.get_username() if user is not None else None

    def get_tags(self, instance: Any) -> dict[str, str]:
        return {tag.key: tag.value for tag in self.document(instance).tags.all()}


class DocumentIdentifierSerializer(_DocumentFields):
    """A listed document, described by its default version (context `defaults`)."""

    name = serializers.CharField()
    document_type = serializers.CharField()
    document_version = serializers.IntegerField(source="default_version")
    latest_version = serializers.IntegerField()
    version_name = serializers.SerializerMethodField()
    document_format = serializers.SerializerMethodField()
    schema_version = serializers.SerializerMethodField()
    platform_types = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    created_date = serializers.DateTimeField(source="created_at")

    def _default(self, document: Document) -> DocumentVersion | None:
        defaults: dict[int, DocumentVersion] = self.context.get("defaults", {})
        return defaults.get(document.pk)

    def get_version_name(self, document: Document) -> str:
        version = self._default(document)
        return version.version_name if version else ""

    def get_document_format(self, document: Document) -> str:
        version = self._default(document)
        return version.content_format if version else ""

    def get_schema_version(self, document: Document) -> str:
        version = self._default(document)
        return version.schema_version if version else ""

    def get_platform_types(self, document: Document) -> list[str]:
        version = self._default(document)
        return list(version.platform_types) if version else []

    def get_description(self, document: Document) -> str:
        version = self._default(document)
        return version.description if version else ""


class DocumentParameterSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    description = serializers.CharField()
    default_value = serializers.JSONField(allow_null=True, help_text="null when required.")


class DocumentDescriptionSerializer(_DocumentFields):
    """AWS's DocumentDescription: the document, and the version asked for."""

    name = serializers.CharField(source="document.name")
    document_type = serializers.CharField(source="document.document_type")
    document_version = serializers.IntegerField(source="version")
    version_name = serializers.CharField()
    default_version = serializers.IntegerField(source="document.default_version")
    latest_version = serializers.SerializerMethodField()
    hash = serializers.CharField(source="content_hash")
    hash_type = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    description = serializers.CharField()
    schema_version = serializers.CharField()
    document_format = serializers.CharField(source="content_format")
    platform_types = serializers.ListField(child=serializers.CharField())
    parameters = serializers.SerializerMethodField()
    created_date = serializers.DateTimeField(source="document.created_at")
    version_created_date = serializers.DateTimeField(source="created_at")

    def get_latest_version(self, version: DocumentVersion) -> int:
        # The version at hand exists, so the latest is at least it (also right for a version
        # written a moment ago through a document row read before it).
        return max(version.document.latest_version, version.version)

    def get_hash_type(self, version: DocumentVersion) -> str:
        return HASH_TYPE

    def get_status(self, version: DocumentVersion) -> str:
        return ACTIVE

    @extend_schema_field(DocumentParameterSerializer(many=True))
    def get_parameters(self, version: DocumentVersion) -> list[dict[str, Any]]:
        declared = version.body.get("parameters") or {}
        return [
            {
                "name": name,
                "type": definition.get("type", ""),
                "description": definition.get("description", ""),
                "default_value": definition.get("default"),
            }
            for name, definition in declared.items()
        ]


class DocumentContentSerializer(serializers.Serializer):
    """AWS's GetDocument: one version's content (context `format`: convert to it)."""

    name = serializers.CharField(source="document.name")
    document_type = serializers.CharField(source="document.document_type")
    document_version = serializers.IntegerField(source="version")
    version_name = serializers.CharField()
    document_format = serializers.SerializerMethodField()
    content = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    created_date = serializers.DateTimeField(source="created_at")

    def get_document_format(self, version: DocumentVersion) -> str:
        return str(self.context.get("format") or version.content_format)

    def get_content(self, version: DocumentVersion) -> str:
        return str(self.context["content"])

    def get_status(self, version: DocumentVersion) -> str:
        return ACTIVE


class DocumentVersionInfoSerializer(serializers.Serializer):
    name = serializers.CharField(source="document.name")
    document_version = serializers.IntegerField(source="version")
    version_name = serializers.CharField()
    is_default_version = serializers.SerializerMethodField()
    document_format = serializers.CharField(source="content_format")
    hash = serializers.CharField(source="content_hash")
    status = serializers.SerializerMethodField()
    created_date = serializers.DateTimeField(source="created_at")

    def get_is_default_version(self, version: DocumentVersion) -> bool:
        return version.version == version.document.default_version

    def get_status(self, version: DocumentVersion) -> str:
        return ACTIVE


class DocumentListResponse(serializers.Serializer):
    results = DocumentIdentifierSerializer(many=True)
    next_token = serializers.CharField(allow_null=True)


class DocumentVersionListResponse(serializers.Serializer):
    results = DocumentVersionInfoSerializer(many=True)
    next_token = serializers.CharField(allow_null=True)


class DefaultVersionResponse(serializers.Serializer):
    name = serializers.CharField(source="document.name")
    default_version = serializers.IntegerField(source="version")
    default_version_name = serializers.CharField(source="version_name")


# --- Output: commands -----------------------------------------------------------------------


class LeftOutSerializer(serializers.Serializer):
    refused = serializers.ListField(
        child=serializers.CharField(), help_text="Named nodes the policy refused."
    )
    unknown = serializers.ListField(child=serializers.CharField())
    deregistered = serializers.ListField(child=serializers.CharField())


class CommandSerializer(serializers.Serializer):
    command_id = serializers.CharField()
    document_name = serializers.CharField()
    document_version = serializers.IntegerField()
    document_hash = serializers.CharField()
    comment = serializers.CharField()
    parameters = CommandParametersField()
    targets = CommandTargetSerializer(many=True)
    max_concurrency = serializers.CharField()
    max_errors = serializers.CharField()
    timeout_seconds = serializers.IntegerField()
    execution_timeout = serializers.IntegerField()
    expires_after = serializers.DateTimeField()
    status = serializers.CharField()
    status_details = serializers.CharField()
    target_count = serializers.IntegerField()
    completed_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    delivery_timed_out_count = serializers.IntegerField()
    left_out = serializers.SerializerMethodField()
    requested_at = serializers.DateTimeField()
    requested_by = serializers.SerializerMethodField()
    requested_by_arn = serializers.CharField()
    cancel_requested_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(LeftOutSerializer)
    def get_left_out(self, command: Command) -> dict[str, list[str]]:
        stored = command.left_out or {}
        return {key: list(stored.get(key, [])) for key in ("refused", "unknown", "deregistered")}

    def get_requested_by(self, command: Command) -> str | None:
        user = command.requested_by
        return user.get_username() if user is not None else None


class CommandDetailSerializer(CommandSerializer):
    """A command with its invocations counted by fine status (context `counts`)."""

    counts = serializers.SerializerMethodField(
        help_text="{fine status: invocations}, of the nodes you may see."
    )

    def get_counts(self, command: Command) -> dict[str, int]:
        return dict(self.context.get("counts", {}))


class CommandListResponse(serializers.Serializer):
    results = CommandSerializer(many=True)
    next_token = serializers.CharField(allow_null=True)


class CancelResponse(serializers.Serializer):
    command_id = serializers.CharField()
    open_invocations = serializers.IntegerField(
        help_text="How many invocations (on nodes you may see) were still open: those not "
        "started are cancelled now, running ones are being stopped."
    )


class StreamSerializer(serializers.Serializer):
    content = serializers.CharField(help_text="The first 24,000 characters.")
    length = serializers.IntegerField(help_text="The whole stream's length in characters.")
    truncated = serializers.BooleanField(help_text="The content is cut: download the rest.")
    dropped_bytes = serializers.IntegerField(help_text="What the agent's output limit dropped.")
    url = serializers.CharField(help_text="The whole stream, as text/plain.")


class StepSerializer(serializers.Serializer):
    name = serializers.CharField()
    action = serializers.CharField()
    status = serializers.CharField()
    status_details = serializers.CharField()
    response_code = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    stdout = StreamSerializer()
    stderr = StreamSerializer()


class InvocationSerializer(serializers.Serializer):
    """One node's run of a command (context `steps`: {invocation pk: its steps}, or None)."""

    command_id = serializers.CharField(source="command.command_id")
    node_id = serializers.CharField()
    node_name = serializers.CharField()
    document_name = serializers.CharField(source="command.document_name")
    comment = serializers.CharField(source="command.comment")
    status = serializers.CharField()
    status_details = serializers.CharField()
    reason = serializers.CharField()
    response_code = serializers.IntegerField(allow_null=True)
    requested_at = serializers.DateTimeField(source="command.requested_at")
    dispatched_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    steps = StepSerializer(
        many=True,
        required=False,
        help_text="Each step with its inline output: with ?details=true, and always on one "
        "invocation.",
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # Rendering passes the steps in the context (None: leave them out); the declared
        # field is there for the OpenAPI document.
        if "steps" in self.context:
            fields.pop("steps")
        return fields

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        steps = self.context.get("steps")
        if steps is not None:
            data["steps"] = StepSerializer(steps.get(instance.pk, []), many=True).data
        return data


class InvocationListResponse(serializers.Serializer):
    results = InvocationSerializer(many=True)
    next_token = serializers.CharField(allow_null=True)
