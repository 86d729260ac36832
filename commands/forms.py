"""Forms of the Run Command and Documents pages: they parse what people type into what the
services take (AWS's shapes: `{name: [values]}` parameters, `[{"Key", "Values"}]` targets);
the services, and the document schema below them, decide what is valid and allowed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from django import forms

from commands import rates
from commands.documents.values import ParameterSpec
from commands.exceptions import CommandsError
from commands.models import CommandStatus, DocumentFormat
from commands.services.send import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_COMMENT,
    MAX_DELIVERY_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
)
from fleet.targets import GROUP_NAME, INSTANCE_IDS, MAX_INSTANCE_IDS, TAG_KEY, TAG_PREFIX
from parameters.forms import BootstrapForm

# --- Lists' filters --------------------------------------------------------------------------


class CommandFilterForm(BootstrapForm):
    q = forms.CharField(required=False, max_length=100, label="Command id or comment")
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *CommandStatus.choices], label="Status"
    )
    document = forms.CharField(required=False, max_length=128, label="Document")
    node = forms.CharField(required=False, max_length=20, label="Node id")
    requested_by = forms.CharField(required=False, max_length=150, label="Requested by")

    def criteria(self) -> dict[str, str]:
        """The valid filters (a field with an error filters nothing; its error shows)."""
        if not self.is_bound or not self.is_valid():
            return {}
        return {name: value.strip() for name, value in self.cleaned_data.items() if value}


OWNER_CHOICES = [
    ("", "Any owner"),
    ("Bosun", "Bosun (built-in)"),
    ("Self", "Custom (created here)"),
]


class DocumentFilterForm(BootstrapForm):
    q = forms.CharField(required=False, max_length=128, label="Name contains")
    owner = forms.ChoiceField(required=False, choices=OWNER_CHOICES, label="Owner")


# --- Run a command ---------------------------------------------------------------------------

TARGET_INSTANCES = "instances"
TARGET_TAGS = "tags"
TARGET_GROUP = "group"
TARGET_MODES = [
    (TARGET_INSTANCES, "Choose nodes"),
    (TARGET_TAGS, "Specify tags"),
    (TARGET_GROUP, "Resource group"),
]
# Where a targets error shows, by how the targets were given.
TARGET_FIELDS = {
    TARGET_INSTANCES: "instance_ids",
    TARGET_TAGS: "target_tags",
    TARGET_GROUP: "resource_group",
}
TAGS_HELP = (
    "One target per line, all must match: Env=dev,test (the tag Env is dev or test), or a "
    "bare key such as Role (nodes with that tag)."
)


class IdListField(forms.Field):
    """Repeated values (checkboxes of one name) as a list of distinct, non-empty texts."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        items = value if isinstance(value, list | tuple) else [value]
        return list(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


class SendForm(BootstrapForm):
    document = forms.ChoiceField(label="Document")
    document_version = forms.CharField(required=False, max_length=128, label="Version")
    target_mode = forms.ChoiceField(
        choices=TARGET_MODES, initial=TARGET_INSTANCES, widget=forms.RadioSelect
    )
    instance_ids = IdListField(required=False, label="Nodes")
    target_tags = forms.CharField(
        required=False,
        max_length=4000,
        label="Tags",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=TAGS_HELP,
    )
    resource_group = forms.CharField(required=False, max_length=128, label="Resource group")
    max_concurrency = forms.CharField(
        max_length=7,
        initial=rates.DEFAULT_MAX_CONCURRENCY,
        label="Concurrency",
        help_text="How many nodes run it at once: a number, or a percentage of the targets "
        "such as 10%.",
    )
    max_errors = forms.CharField(
        max_length=7,
        initial=rates.DEFAULT_MAX_ERRORS,
        label="Error threshold",
        help_text="After this many errors (or this percentage of the targets) no further "
        "node is sent the command. 0 stops at the first error.",
    )
    timeout_seconds = forms.IntegerField(
        initial=DEFAULT_TIMEOUT_SECONDS,
        label="Delivery timeout (seconds)",
        help_text="How long a node may take to start it (an offline node waits this long); "
        "30 to 2592000.",
    )
    comment = forms.CharField(
        required=False,
        max_length=MAX_COMMENT,
        label="Comment",
        help_text=f"Shown in the command history; at most {MAX_COMMENT} characters.",
    )

    def __init__(self, *args: Any, documents: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "Choose a document…")] + [(name, name) for name in documents]
        cast(forms.ChoiceField, self.fields["document"]).choices = choices
        self.targets: list[dict[str, Any]] = []

    def clean_timeout_seconds(self) -> int:
        seconds = self.cleaned_data["timeout_seconds"]
        if not MIN_TIMEOUT_SECONDS <= seconds <= MAX_DELIVERY_TIMEOUT_SECONDS:
            raise forms.ValidationError(
                f"The delivery timeout must be between {MIN_TIMEOUT_SECONDS} and "
                f"{MAX_DELIVERY_TIMEOUT_SECONDS} seconds."
            )
        return seconds

    @property
    def target_field(self) -> str:
        mode = self["target_mode"].value()
        return TARGET_FIELDS.get(str(mode), "instance_ids")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        for name in ("max_concurrency", "max_errors"):
            if name in data:
                data[name] = data[name].strip()
        if "max_concurrency" in data and "max_errors" in data:
            try:
                rates.rate_check(data["max_concurrency"], data["max_errors"])
            except CommandsError as error:
                self.add_error(error.field or None, error.message)
        if data.get("target_mode"):
            try:
                self.targets = targets_of(data)
            except forms.ValidationError as error:
                self.add_error(self.target_field, error)
        return data


def targets_of(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The AWS Targets the chosen way of targeting means (shape only: fleet.targets checks
    keys, values and counts, and resolves them)."""
    mode = data.get("target_mode")
    if mode == TARGET_INSTANCES:
        ids = list(data.get("instance_ids") or [])
        if not ids:
            raise forms.ValidationError("Choose at least one node.")
        if len(ids) > MAX_INSTANCE_IDS:
            raise forms.ValidationError(
                f"{len(ids)} nodes chosen; at most {MAX_INSTANCE_IDS}. Target more nodes by "
                "tag or resource group."
            )
        return [{"Key": INSTANCE_IDS, "Values": ids}]
    if mode == TARGET_GROUP:
        group = (data.get("resource_group") or "").strip()
        if not group:
            raise forms.ValidationError("Choose a resource group.")
        return [{"Key": GROUP_NAME, "Values": [group]}]
    targets = targets_from_lines(data.get("target_tags") or "")
    if not targets:
        raise forms.ValidationError("Give at least one tag, such as Env=dev.")
    return targets


def targets_from_lines(text: str) -> list[dict[str, Any]]:
    """`Env=dev,test` → tag:Env; a bare `Role` → tag-key; `tag-key=A,B`,
    `resource-groups:Name=web` and `InstanceIds=mi-…` as AWS writes them (so any Targets a
    command was sent with can be written here again)."""
    targets = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, sep, rest = line.partition("=")
        key = key.strip()
        values = [value.strip() for value in rest.split(",") if value.strip()]
        if not sep:
            targets.append({"Key": TAG_KEY, "Values": [key]})
        elif key in (TAG_KEY, GROUP_NAME, INSTANCE_IDS) or key.startswith(TAG_PREFIX):
            targets.append({"Key": key, "Values": values})
        else:
            targets.append({"Key": f"{TAG_PREFIX}{key}", "Values": values})
    return targets


def targets_initial(targets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Form values that give these Targets back (a re-run starts from the earlier command's)."""
    targets = [t for t in targets if isinstance(t, Mapping)]
    if len(targets) == 1:
        key, values = targets[0].get("Key"), list(targets[0].get("Values") or [])
        if key == INSTANCE_IDS:
            return {"target_mode": TARGET_INSTANCES, "instance_ids": values}
        if key == GROUP_NAME and len(values) == 1:
            return {"target_mode": TARGET_GROUP, "resource_group": values[0]}
    lines = []
    for target in targets:
        key, values = str(target.get("Key", "")), [str(v) for v in target.get("Values") or []]
        if key.startswith(TAG_PREFIX):
            lines.append(f"{key.removeprefix(TAG_PREFIX)}={','.join(values)}")
        elif key == TAG_KEY and len(values) == 1:
            lines.append(values[0])
        else:
            lines.append(f"{key}={','.join(values)}")
    return {"target_mode": TARGET_TAGS, "target_tags": "\n".join(lines)}


# --- A document's parameters, as fields ------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2)
    return "" if value is None else str(value)


class ParametersForm(forms.Form):
    """One field per parameter of the document, by its type: String an input (a select with
    allowedValues, a textarea with displayType textarea), StringList a textarea of one item a
    line, Integer a number, Boolean a select, StringMap and MapList JSON in a textarea.

    A blank optional field sends nothing, so its default applies."""

    prefix = "param"

    def __init__(
        self,
        data: Any = None,
        *,
        specs: Mapping[str, ParameterSpec],
        given: Mapping[str, Any] | None = None,
    ) -> None:
        """`given`: earlier values as AWS's wire has them ({name: [values]}), for a re-run."""
        self.specs = dict(specs)
        given = given or {}
        initial = {name: self._initial(spec, given.get(name)) for name, spec in specs.items()}
        super().__init__(data, initial=initial)
        for name, spec in self.specs.items():
            self.fields[name] = self._field(spec)

    @staticmethod
    def _initial(spec: ParameterSpec, given: Any) -> Any:
        if given is not None:
            items = given if isinstance(given, list) else [given]
            if spec.type == "StringList":
                return items if spec.allowed_values else "\n".join(str(i) for i in items)
            return _text(items[0]) if items else ""
        if not spec.has_default:
            return [] if spec.type == "StringList" and spec.allowed_values else ""
        if spec.type == "StringList":
            items = spec.default if isinstance(spec.default, list) else [spec.default]
            return items if spec.allowed_values else "\n".join(str(i) for i in items)
        return _text(spec.default)

    @staticmethod
    def _field(spec: ParameterSpec) -> forms.Field:
        # The field starts at the default, so the help is the description; a pattern is
        # shown only where no description says what the value should be.
        help_text = spec.description or (
            f"Must match {spec.allowed_pattern}" if spec.allowed_pattern else ""
        )
        options: dict[str, Any] = {"required": False, "label": spec.name, "help_text": help_text}
        mono = {"class": "form-control font-monospace", "spellcheck": "false"}
        if spec.type == "StringList":
            if spec.allowed_values:
                return forms.MultipleChoiceField(
                    choices=[(v, v) for v in spec.allowed_values],
                    widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
                    **options,
                )
            options["help_text"] = f"{help_text} One item per line.".strip()
            return forms.CharField(
                strip=False, widget=forms.Textarea(attrs={**mono, "rows": 4}), **options
            )
        if spec.allowed_values:
            blank = [] if spec.has_default else [("", "Choose…")]
            return forms.ChoiceField(
                choices=blank + [(v, v) for v in spec.allowed_values],
                widget=forms.Select(attrs={"class": "form-select"}),
                **options,
            )
        if spec.type == "Integer":
            return forms.CharField(
                widget=forms.NumberInput(attrs={"class": "form-control", "step": 1}), **options
            )
        if spec.type == "Boolean":
            blank = [] if spec.has_default else [("", "Choose…")]
            return forms.ChoiceField(
                choices=[*blank, ("true", "true"), ("false", "false")],
                widget=forms.Select(attrs={"class": "form-select"}),
                **options,
            )
        if spec.type in ("StringMap", "MapList"):
            example = '{"key": "value"}' if spec.type == "StringMap" else '[{"key": "value"}]'
            options["help_text"] = f"{help_text} JSON, such as {example}.".strip()
            return forms.CharField(widget=forms.Textarea(attrs={**mono, "rows": 3}), **options)
        if spec.display_type == "textarea":
            return forms.CharField(
                strip=False, widget=forms.Textarea(attrs={**mono, "rows": 3}), **options
            )
        return forms.CharField(widget=forms.TextInput(attrs={"class": "form-control"}), **options)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or self.cleaned_data
        for name, spec in self.specs.items():
            if spec.required and self._blank(data.get(name)) and name not in self.errors:
                self.add_error(name, "Required: this parameter has no default.")
        return data

    @staticmethod
    def _blank(value: Any) -> bool:
        return value is None or value == [] or (isinstance(value, str) and not value.strip())

    def values(self) -> dict[str, list[str]]:
        """What the service takes: {name: [text, ...]}, blank optional parameters left out."""
        values: dict[str, list[str]] = {}
        for name, spec in self.specs.items():
            value = self.cleaned_data.get(name)
            if self._blank(value):
                continue
            if spec.type == "StringList":
                if isinstance(value, list):
                    values[name] = [str(item) for item in value]
                else:
                    lines = str(value).replace("\r\n", "\n").split("\n")
                    while lines and not lines[-1].strip():
                        lines.pop()
                    values[name] = lines
            else:
                values[name] = [str(value).strip() if spec.type != "String" else str(value)]
        return values

    def add_error(self, field: str | None, error: Any) -> None:
        super().add_error(field, error)
        if field in self.fields:
            attrs = self.fields[field].widget.attrs
            if "is-invalid" not in attrs.get("class", ""):
                attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()


# --- Documents -------------------------------------------------------------------------------


class DocumentForm(BootstrapForm):
    name = forms.CharField(
        max_length=128,
        help_text="3 to 128 letters, digits, _ - and . characters. Names starting with AWS-, "
        "Amazon or Bosun- are reserved.",
    )
    content_format = forms.ChoiceField(
        choices=[(value, value) for value in DocumentFormat.values],
        initial=DocumentFormat.YAML,
        label="Format",
    )
    content = forms.CharField(
        strip=False,
        label="Content",
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "wrap": "off"}),
        help_text="A Command document, schema 2.2: schemaVersion, description, parameters and "
        "mainSteps (aws:runShellScript, aws:runPowerShellScript).",
    )
    version_name = forms.CharField(
        required=False,
        max_length=128,
        label="Version name",
        help_text="Optional: a name for this version, such as 1.2 or before-rollout.",
    )
    # The latest version the edit started from, so two editors never overwrite each other.
    base_version = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["content"].widget.attrs["class"] += " font-monospace"
        self.error_line: int | None = None
        if editing:
            del self.fields["name"]


DOCUMENT_TEMPLATE = """\
schemaVersion: "2.2"
description: What this document does.
parameters:
  message:
    type: String
    description: Text to print.
    default: hello
mainSteps:
  - action: aws:runShellScript
    name: run
    inputs:
      runCommand:
        - echo "{{ message }}"
"""
