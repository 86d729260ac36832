"""Forms of the access pages: they check the input's shape; services decide the rest."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.models import Group, User
from django.core.validators import RegexValidator

from access.models import ManagedPolicy
from access.policy import KNOWN_ACTIONS

# IAM's rule for user, group and policy names.
iam_name = RegexValidator(
    r"^[\w+=,.@-]+$", "Use letters, digits and + = , . @ _ - only (no spaces)."
)


class BootstrapForm(forms.Form):
    """Bootstrap classes on every widget, and `is-invalid` on fields with errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            widget = field.widget
            if isinstance(widget, forms.CheckboxSelectMultiple | forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            if self.is_bound and name in self.errors:
                css += " is-invalid"
            widget.attrs["class"] = css


class UserFilterForm(BootstrapForm):
    q = forms.CharField(required=False, label="Search", max_length=150)
    group = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"), required=False, empty_label="Any group"
    )


class UserCreateForm(BootstrapForm):
    username = forms.CharField(max_length=64, validators=[iam_name])
    email = forms.EmailField(required=False)
    password = forms.CharField(
        label="Initial password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Tell the user; they can change it after signing in.",
    )
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        password = data.get("password")
        if password:
            candidate = User(username=data.get("username", ""), email=data.get("email", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return data


class UserGroupsForm(BootstrapForm):
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class PolicyChoiceForm(BootstrapForm):
    policy = forms.ModelChoiceField(queryset=ManagedPolicy.objects.all(), empty_label=None)


class GroupCreateForm(BootstrapForm):
    name = forms.CharField(max_length=128, validators=[iam_name])


class GroupMemberForm(BootstrapForm):
    user = forms.ModelChoiceField(queryset=User.objects.order_by("username"), empty_label=None)


class PolicyForm(BootstrapForm):
    name = forms.CharField(max_length=128, validators=[iam_name])
    description = forms.CharField(max_length=1000, required=False)
    document = forms.CharField(
        strip=False,
        widget=forms.Textarea(attrs={"rows": 22, "spellcheck": "false", "data-json-editor": ""}),
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["document"].widget.attrs["class"] += " font-monospace"
        if editing:
            # A policy's name is its ARN; renaming would silently change what policies match.
            self.fields["name"].disabled = True


class SimulatorForm(BootstrapForm):
    user = forms.ModelChoiceField(queryset=User.objects.order_by("username"), empty_label=None)
    action = forms.CharField(
        max_length=128,
        widget=forms.TextInput(attrs={"list": "known-actions", "placeholder": "ssm:GetParameter"}),
    )
    resource = forms.CharField(
        max_length=2048, initial="*", label="Resource ARN", help_text="* for actions on no resource"
    )
    source_ip = forms.GenericIPAddressField(required=False, label="Source IP")
    mfa = forms.BooleanField(required=False, label="Signed in with a second factor (MFA)")

    def clean_action(self) -> str:
        action = self.cleaned_data["action"].strip()
        canonical = {known.lower(): known for known in KNOWN_ACTIONS}.get(action.lower())
        if canonical is None:
            raise forms.ValidationError(
                f'"{action}" is not a known action. Pick one from the list, e.g. ssm:GetParameter.'
            )
        return canonical
