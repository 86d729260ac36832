"""Forms of the webhook pages: they parse what people type; the services decide the rest."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django import forms

from access.forms import BootstrapForm
from webhooks.events import KNOWN_EVENTS, patterns_validated
from webhooks.exceptions import WebhookValidationError
from webhooks.models import WebhookEndpoint
from webhooks.validation import MAX_NAME, MAX_URL, name_validated, url_validated

_SEPARATORS = re.compile(r"[\s,]+")


def patterns_from_text(text: str) -> list[str]:
    return [pattern for pattern in _SEPARATORS.split(text) if pattern]


def _checked(check: Callable[[Any], Any], value: Any) -> Any:
    try:
        return check(value)
    except WebhookValidationError as error:
        raise forms.ValidationError(error.message) from None


class WebhookForm(BootstrapForm):
    name = forms.CharField(
        max_length=MAX_NAME, help_text="Letters, digits and _ . - only, such as ops-alerts."
    )
    url = forms.CharField(
        max_length=MAX_URL,
        label="Payload URL",
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.com/bosun"}),
        help_text="Events are POSTed here as JSON. http:// or https:// only; redirects are not "
        "followed.",
    )
    events = forms.CharField(
        initial="parameter.*",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "parameter.*"}),
        help_text="Event types or patterns, separated by commas or new lines; * stands for "
        "anything: parameter.* for every Parameter Store event, * for all.",
    )
    enabled = forms.BooleanField(
        required=False, initial=True, help_text="A disabled webhook receives nothing."
    )

    known_events = KNOWN_EVENTS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["events"].widget.attrs["class"] += " font-monospace"

    def clean_name(self) -> str:
        return str(_checked(name_validated, self.cleaned_data["name"]))

    def clean_url(self) -> str:
        return str(_checked(url_validated, self.cleaned_data["url"]))

    def clean_events(self) -> list[str]:
        patterns = patterns_from_text(self.cleaned_data["events"])
        return list(_checked(patterns_validated, patterns))

    @classmethod
    def initial_for(cls, endpoint: WebhookEndpoint) -> dict[str, Any]:
        return {
            "name": endpoint.name,
            "url": endpoint.url,
            "events": "\n".join(endpoint.events),
            "enabled": endpoint.enabled,
        }


class WebhookEditForm(WebhookForm):
    regenerate_secret = forms.BooleanField(
        required=False,
        label="Regenerate the signing secret",
        help_text="The current secret stops working at once; the new one is shown once.",
    )
