"""Forms of the fleet pages: they parse what people type; the services decide the rest."""

from __future__ import annotations

from typing import Any

from django import forms

from access.forms import BootstrapForm
from fleet.codes import NODE_ID_PATTERN
from fleet.exceptions import FleetValidationError
from fleet.services.activations import MAX_REGISTRATION_LIMIT, MAX_TEXT
from fleet.services.resource_groups import NAME_PATTERN
from fleet.tags import tag_keys_validated, tags_validated

# Tag text: "Key=Value" pairs, one per line or separated by commas (a comma is never part of
# a tag), a bare "Key" meaning an empty value.
TAGS_HELP = "Key=Value pairs, separated by commas or new lines."
MAX_EXPIRY_HOURS = 30 * 24


def tags_from_text(text: str) -> dict[str, str]:
    """Parse tag text into {key: value}; FleetValidationError names the faulty tag."""
    pairs: list[dict[str, str]] = []
    for item in text.replace("\n", ",").split(","):
        if item.strip():
            key, _, value = item.partition("=")
            pairs.append({"Key": key.strip(), "Value": value.strip()})
    return tags_validated(pairs)


def tags_as_text(tags: list[dict[str, str]]) -> str:
    return ", ".join(f"{tag['Key']}={tag['Value']}" for tag in tags)


def _parsed(parse: Any, text: Any) -> Any:
    try:
        return parse(text)
    except FleetValidationError as error:
        raise forms.ValidationError(error.message) from None


class ActivationForm(BootstrapForm):
    description = forms.CharField(max_length=MAX_TEXT, required=False)
    default_instance_name = forms.CharField(
        max_length=MAX_TEXT,
        required=False,
        label="Default node name",
        help_text="Nodes registering without a name take this one; else their host name.",
    )
    registration_limit = forms.IntegerField(
        min_value=1,
        max_value=MAX_REGISTRATION_LIMIT,
        initial=1,
        help_text=f"How many servers may register with it: 1 to {MAX_REGISTRATION_LIMIT}.",
    )
    expires_in_hours = forms.IntegerField(
        min_value=1,
        max_value=MAX_EXPIRY_HOURS,
        initial=24,
        label="Expires in (hours)",
        help_text="At most 720 hours (30 days).",
    )
    tags = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Env=dev, Team=platform"}),
        label="Tags for registered nodes",
        help_text=TAGS_HELP,
    )

    def clean_tags(self) -> dict[str, str]:
        return _parsed(tags_from_text, self.cleaned_data["tags"])


class TagsForm(BootstrapForm):
    """Tags to add to one node."""

    tags = forms.CharField(
        max_length=20_000,
        widget=forms.TextInput(attrs={"placeholder": "Env=dev, Role=web"}),
        help_text=TAGS_HELP,
    )

    def clean_tags(self) -> dict[str, str]:
        tags = _parsed(tags_from_text, self.cleaned_data["tags"])
        if not tags:
            raise forms.ValidationError("Give at least one tag.")
        return tags


class NodeIdsField(forms.MultipleChoiceField):
    """The ids ticked in the node list: any well-formed id (the service decides the rest)."""

    def valid_value(self, value: str) -> bool:
        return bool(NODE_ID_PATTERN.fullmatch(value))


class BulkTagsForm(BootstrapForm):
    """Add tags to, or remove tag keys from, the nodes selected in the list."""

    operation = forms.ChoiceField(choices=[("add", "Add tags"), ("remove", "Remove tag keys")])
    tags = forms.CharField(
        max_length=20_000,
        widget=forms.TextInput(attrs={"placeholder": "Env=dev (to remove: Env)"}),
    )
    node = NodeIdsField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        text = data.get("tags", "")
        if data.get("operation") == "remove":
            keys = [key.strip() for key in text.replace("\n", ",").split(",") if key.strip()]
            data["keys"] = _parsed(tag_keys_validated, keys) if keys else None
        elif text:
            data["add"] = _parsed(tags_from_text, text)
        if not data.get("node"):
            raise forms.ValidationError("Select at least one node in the list.")
        return data


class ResourceGroupForm(BootstrapForm):
    name = forms.CharField(max_length=128, help_text="Letters, digits and _ . - only.")
    description = forms.CharField(max_length=512, required=False)
    query = forms.CharField(
        label="Tag filters",
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "Env=dev,test\nRole"}),
        help_text="One filter per line: Key=value1,value2 (any of the values) or just Key "
        "(has the tag). A node must match every line.",
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["query"].widget.attrs["class"] += " font-monospace"
        if editing:
            # A group's name is its ARN, which policies may name: it never changes.
            self.fields["name"].disabled = True

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not NAME_PATTERN.fullmatch(name):
            raise forms.ValidationError("Use letters, digits and _ . - only (no spaces).")
        return name

    def clean_query(self) -> dict[str, Any]:
        return query_from_text(self.cleaned_data["query"])


def query_from_text(text: str) -> dict[str, Any]:
    """The tag query the filter lines describe (validated by the service, not here)."""
    filters = []
    for line in text.splitlines():
        if line.strip():
            key, sep, values = line.partition("=")
            parsed = [value.strip() for value in values.split(",") if value.strip()] if sep else []
            filters.append({"Key": key.strip(), "Values": parsed})
    return {"TagFilters": filters}


def query_as_text(query: dict[str, Any]) -> str:
    lines = []
    for item in query.get("TagFilters", []):
        values = item.get("Values") or []
        lines.append(f"{item['Key']}={','.join(values)}" if values else item["Key"])
    return "\n".join(lines)
