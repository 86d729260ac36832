"""Forms of the Parameter Store pages: they parse what people type into what the services take;
the services (and parameters.rules below them) decide whether it is allowed and valid."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import forms

from bosun.lib.errors import BosunError
from parameters import exceptions, rules
from parameters import policies as policy_rules
from parameters.models import DataType, ParameterType, Tier

TAGS_HELP = "Key=Value pairs, separated by commas or new lines."
UNITS = [("Days", "days"), ("Hours", "hours")]
MAX_IMPORT_BYTES = 2 * 1024 * 1024
DATETIME_INPUT = "%Y-%m-%dT%H:%M"
DEFAULT_KEY = "alias/aws/ssm"


def tags_from_text(text: str) -> dict[str, str]:
    """`Env=dev, Team=web` as {key: value}; a bare `Key` has an empty value. The service
    checks keys and values by AWS's rules."""
    tags: dict[str, str] = {}
    for item in text.replace("\n", ",").split(","):
        if item.strip():
            key, _, value = item.partition("=")
            tags[key.strip()] = value.strip()
    return tags


class BootstrapForm(forms.Form):
    """Bootstrap classes on every widget, and `is-invalid` on a field once it has an error,
    including errors added after validation (a service's refusal). Unlike access's form of
    the same purpose it never validates in __init__, so subclasses may still change their
    fields there (disable the name on edit) before the data is cleaned."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput | forms.RadioSelect):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = css

    def add_error(self, field: str | None, error: Any) -> None:
        super().add_error(field, error)
        for name in self.errors:
            attrs = self.fields[name].widget.attrs if name in self.fields else None
            if attrs is not None and "is-invalid" not in attrs.get("class", ""):
                attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()


# --- The list's filters ---------------------------------------------------------------------


class ParameterFilterForm(BootstrapForm):
    path = forms.CharField(required=False, widget=forms.HiddenInput)
    q = forms.CharField(required=False, max_length=1024, label="Name contains")
    type = forms.ChoiceField(
        required=False, choices=[("", "Any type"), *ParameterType.choices], label="Type"
    )
    tier = forms.ChoiceField(
        required=False, choices=[("", "Any tier"), *Tier.choices], label="Tier"
    )
    tag = forms.CharField(required=False, max_length=400, label="Tag")

    def clean_path(self) -> str:
        try:
            return rules.parse_path(self.cleaned_data["path"] or "/")
        except exceptions.ParameterError as error:
            raise forms.ValidationError(error.message) from None

    def clean_tag(self) -> tuple[str, str | None] | None:
        text = self.cleaned_data["tag"].strip()
        if not text:
            return None
        key, sep, value = text.partition("=")
        if not key.strip():
            raise forms.ValidationError("Give a tag key, or Key=Value.")
        return key.strip(), (value.strip() if sep else None)

    @property
    def current_path(self) -> str:
        return self.cleaned_data.get("path", "/") if self.is_valid() else "/"

    @property
    def searching(self) -> bool:
        """A search or filter looks below the whole path, not at one level of it."""
        data = self.cleaned_data if self.is_valid() else {}
        return any(data.get(key) for key in ("q", "type", "tier", "tag"))

    def parameter_filters(self) -> list[dict[str, Any]]:
        """The AWS ParameterFilters these choices mean, for the describe selector."""
        data = self.cleaned_data
        filters: list[dict[str, Any]] = [
            {
                "Key": "Path",
                "Option": "Recursive" if self.searching else "OneLevel",
                "Values": [data["path"]],
            }
        ]
        if data.get("q"):
            filters.append({"Key": "Name", "Option": "Contains", "Values": [data["q"]]})
        if data.get("type"):
            filters.append({"Key": "Type", "Values": [data["type"]]})
        if data.get("tier"):
            filters.append({"Key": "Tier", "Values": [data["tier"]]})
        if data.get("tag"):
            key, value = data["tag"]
            tag_filter: dict[str, Any] = {"Key": f"tag:{key}"}
            if value is not None:
                tag_filter["Values"] = [value]
            filters.append(tag_filter)
        return filters


# --- Create and edit ------------------------------------------------------------------------


class ParameterForm(BootstrapForm):
    name = forms.CharField(
        max_length=2048,
        help_text="A hierarchy of levels such as /app/prod/db-url: letters, digits and .-_ "
        "between slashes, at most 15 levels.",
    )
    description = forms.CharField(
        required=False, max_length=2048, widget=forms.Textarea(attrs={"rows": 2})
    )
    type = forms.ChoiceField(
        choices=ParameterType.choices,
        initial=ParameterType.STRING,
        help_text="StringList: comma-separated values. SecureString: encrypted with the key "
        "below; shown only to whom may decrypt it.",
    )
    tier = forms.ChoiceField(
        choices=[(tier, tier) for tier in rules.TIERS],
        initial=Tier.STANDARD,
        help_text=f"Standard: values up to {rules.VALUE_MAX_STANDARD // 1024} KB, no policies. "
        f"Advanced: up to {rules.VALUE_MAX_ADVANCED // 1024} KB and policies. "
        "Intelligent-Tiering picks the smaller that fits.",
    )
    data_type = forms.ChoiceField(
        choices=DataType.choices,
        initial=DataType.TEXT,
        label="Data type",
        help_text="aws:ec2:image checks that the value is an image id (String only).",
    )
    value = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
    )
    key_id = forms.CharField(
        required=False,
        max_length=2048,
        initial=DEFAULT_KEY,
        label="KMS key",
        help_text="SecureString only: the key alias, id or ARN that encrypts the value.",
    )
    allowed_pattern = forms.CharField(
        required=False,
        max_length=2048,
        label="Allowed pattern",
        help_text="A regular expression every value must match, such as ^\\d+$. Optional.",
    )
    expiration = forms.DateTimeField(
        required=False,
        label="Expires at (UTC)",
        input_formats=[DATETIME_INPUT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_INPUT),
        help_text="The parameter is deleted at this time.",
    )
    expiration_notice = forms.IntegerField(
        required=False, min_value=1, label="Notify before expiration"
    )
    expiration_notice_unit = forms.ChoiceField(choices=UNITS, initial="Days", label="Unit")
    no_change_after = forms.IntegerField(
        required=False, min_value=1, label="Notify when unchanged for"
    )
    no_change_unit = forms.ChoiceField(choices=UNITS, initial="Days", label="Unit")
    tags = forms.CharField(
        required=False,
        max_length=20_000,
        widget=forms.TextInput(attrs={"placeholder": "Env=dev, Team=platform"}),
        help_text=TAGS_HELP,
    )

    policy_error = ""
    POLICY_FIELDS = (
        "expiration",
        "expiration_notice",
        "expiration_notice_unit",
        "no_change_after",
        "no_change_unit",
    )

    def __init__(self, *args: Any, editing: bool = False, secure: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.editing = editing
        for name in ("value", "allowed_pattern", "key_id"):
            self.fields[name].widget.attrs["class"] += " font-monospace"
        self.fields["type"].widget.attrs["data-parameter-type"] = ""
        if editing:
            # The name is the parameter's identity (its ARN, named by policies): fixed.
            self.fields["name"].disabled = True
            self.fields["name"].help_text = ""
            # Tags are managed on the parameter's page (PutParameter can't take both).
            del self.fields["tags"]
        if editing and secure:
            self.fields["value"].help_text = (
                "Every version carries its own value: type the new value in full. The current "
                "one is never sent to this form."
            )
        else:
            self.fields["value"].help_text = (
                f"Up to {rules.VALUE_MAX_STANDARD} bytes in the Standard tier, "
                f"{rules.VALUE_MAX_ADVANCED} in the Advanced tier."
            )

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    def clean_value(self) -> str:
        # Browsers send a textarea's line breaks as CRLF; nobody means to store those.
        return self.cleaned_data["value"].replace("\r\n", "\n")

    def clean_tags(self) -> dict[str, str]:
        return tags_from_text(self.cleaned_data.get("tags", ""))

    @property
    def secure(self) -> bool:
        return self.cleaned_data.get("type") == ParameterType.SECURE_STRING

    def policies_changed(self) -> bool:
        return any(name in self.changed_data for name in self.POLICY_FIELDS)

    def policies_json(self) -> str:
        """The AWS Policies text the policy fields describe ("" for none)."""
        data = self.cleaned_data
        items: list[dict[str, Any]] = []
        if data.get("expiration"):
            moment = data["expiration"].astimezone(UTC)
            items.append(
                _policy(
                    policy_rules.EXPIRATION,
                    {"Timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
                )
            )
        if data.get("expiration_notice"):
            items.append(
                _policy(
                    policy_rules.EXPIRATION_NOTIFICATION,
                    {
                        "Before": str(data["expiration_notice"]),
                        "Unit": data["expiration_notice_unit"],
                    },
                )
            )
        if data.get("no_change_after"):
            items.append(
                _policy(
                    policy_rules.NO_CHANGE_NOTIFICATION,
                    {"After": str(data["no_change_after"]), "Unit": data["no_change_unit"]},
                )
            )
        return json.dumps(items) if items else ""

    def show_error(self, error: BosunError) -> str:
        """Put a service's refusal beside the field it is about (the policies' beside the
        policy block, `policy_error`); return what belongs to no field, for the form's top."""
        field = error_field(error)
        if field == "policies":
            self.policy_error = error.message
            return ""
        if field in self.fields:
            self.add_error(field, error.message)
            return ""
        return error.message


def _policy(policy_type: str, attributes: dict[str, str]) -> dict[str, Any]:
    return {"Type": policy_type, "Version": "1.0", "Attributes": attributes}


_POLICY_ERRORS = (
    exceptions.InvalidPolicyType,
    exceptions.InvalidPolicyAttribute,
    exceptions.PoliciesLimitExceeded,
    exceptions.IncompatiblePolicy,
)
_ERROR_FIELDS: tuple[tuple[type[BosunError], str], ...] = (
    (exceptions.ParameterAlreadyExists, "name"),
    (exceptions.HierarchyLevelLimitExceeded, "name"),
    (exceptions.ParameterPatternMismatch, "value"),
    (exceptions.InvalidAllowedPattern, "allowed_pattern"),
    (exceptions.UnsupportedParameterType, "type"),
    (exceptions.InvalidKeyId, "key_id"),
    (exceptions.TooManyTagsError, "tags"),
)


def error_field(error: BosunError) -> str:
    """The form field a service error is about ("policies" for the policy block, "" none)."""
    field = getattr(error, "field", "")
    if field:
        return str(field)
    if isinstance(error, _POLICY_ERRORS):
        return "policies"
    if getattr(error, "code", "") == "key_not_found":
        return "key_id"
    for kind, name in _ERROR_FIELDS:
        if isinstance(error, kind):
            return name
    return ""


def policy_initial(policies: list[dict[str, Any]]) -> dict[str, Any]:
    """The form's policy fields for a parameter's current policies."""
    initial: dict[str, Any] = {}
    for policy in policies:
        try:
            attributes = json.loads(policy["PolicyText"]).get("Attributes", {})
        except (KeyError, ValueError, AttributeError):
            continue
        kind = policy.get("PolicyType")
        if kind == policy_rules.EXPIRATION:
            moment = datetime.fromisoformat(str(attributes["Timestamp"]).replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            initial["expiration"] = moment.astimezone(UTC).replace(second=0, microsecond=0)
        elif kind == policy_rules.EXPIRATION_NOTIFICATION:
            initial["expiration_notice"] = int(attributes["Before"])
            initial["expiration_notice_unit"] = attributes["Unit"]
        elif kind == policy_rules.NO_CHANGE_NOTIFICATION:
            initial["no_change_after"] = int(attributes["After"])
            initial["no_change_unit"] = attributes["Unit"]
    return initial


# --- Tags, labels, versions -----------------------------------------------------------------


class TagsForm(BootstrapForm):
    tags = forms.CharField(
        max_length=20_000,
        widget=forms.TextInput(attrs={"placeholder": "Env=dev, Team=platform"}),
        help_text=TAGS_HELP,
    )

    def clean_tags(self) -> dict[str, str]:
        tags = tags_from_text(self.cleaned_data["tags"])
        if not tags:
            raise forms.ValidationError("Give at least one tag.")
        return tags


class LabelForm(BootstrapForm):
    label = forms.CharField(
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "prod"}),
        help_text="Letters, digits and .-_; not starting with a digit, aws or ssm. A label "
        "already on another version moves to this one.",
    )
    version = forms.IntegerField(min_value=1)


class VersionPairForm(forms.Form):
    a = forms.IntegerField(min_value=1)
    b = forms.IntegerField(min_value=1)


# --- Import and export ----------------------------------------------------------------------

FORMAT_CHOICES = [("json", "JSON"), ("env", ".env")]


class ExportForm(BootstrapForm):
    path = forms.CharField(max_length=2048, initial="/", label="Path")
    fmt = forms.ChoiceField(
        choices=FORMAT_CHOICES, initial="json", label="Format", widget=forms.RadioSelect
    )
    with_decryption = forms.BooleanField(
        required=False,
        label="Include SecureString values",
        help_text="Decrypts each one (recorded in the audit trail). Those you may not decrypt "
        "are left out and listed.",
    )
    skipped_ok = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean_path(self) -> str:
        try:
            return rules.parse_path(self.cleaned_data["path"])
        except exceptions.ParameterError as error:
            raise forms.ValidationError(error.message) from None


class ImportForm(BootstrapForm):
    path = forms.CharField(
        max_length=2048,
        initial="/",
        label="Target path",
        help_text="Each entry is written as <path>/<key>; JSON keys may hold slashes.",
    )
    fmt = forms.ChoiceField(
        choices=[("auto", "Detect"), *FORMAT_CHOICES],
        initial="auto",
        label="Format",
        widget=forms.RadioSelect,
    )
    file = forms.FileField(required=False, label="Upload a file")
    content = forms.CharField(
        required=False,
        strip=False,
        label="…or paste",
        widget=forms.Textarea(
            attrs={"rows": 8, "spellcheck": "false", "placeholder": 'DB_HOST="db.internal"'}
        ),
        help_text='JSON: {"db/url": "postgres://…"}. .env: KEY=value lines.',
    )
    type = forms.ChoiceField(
        choices=[(ParameterType.STRING, "String"), (ParameterType.SECURE_STRING, "SecureString")],
        initial=ParameterType.STRING,
        label="Write as",
    )
    key_id = forms.CharField(
        required=False, max_length=2048, label="KMS key", help_text="SecureString only."
    )
    overwrite = forms.BooleanField(
        required=False,
        label="Overwrite existing parameters",
        help_text="Writes a new version of a parameter that exists; otherwise it is reported "
        "as failed and left as it is.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["content"].widget.attrs["class"] += " font-monospace"

    def clean_path(self) -> str:
        try:
            return rules.parse_path(self.cleaned_data["path"])
        except exceptions.ParameterError as error:
            raise forms.ValidationError(error.message) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        text = data.get("content") or ""
        if upload is not None:
            if upload.size > MAX_IMPORT_BYTES:
                self.add_error("file", f"The file is over {MAX_IMPORT_BYTES // 1024 // 1024} MB.")
                return data
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                self.add_error("file", "The file is not UTF-8 text.")
                return data
        if not text.strip():
            self.add_error("content", "Upload a file or paste its content.")
            return data
        data["text"] = text.replace("\r\n", "\n")
        if data.get("fmt") == "auto":
            named_env = upload is not None and upload.name.endswith(".env")
            data["fmt"] = "json" if text.lstrip().startswith("{") and not named_env else "env"
        return data
