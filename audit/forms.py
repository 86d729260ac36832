"""The audit page's filter form: GET parameters in, an EventFilter out."""

from __future__ import annotations

from typing import Any

from django import forms

from audit.models import AuditEvent
from audit.selectors import EventFilter


class EventFilterForm(forms.Form):
    who = forms.CharField(required=False, max_length=256, label="Who")
    action = forms.CharField(
        required=False, max_length=128, label="Action", help_text="Exact, or a prefix: ssm:*"
    )
    resource = forms.CharField(required=False, max_length=512, label="Resource")
    outcome = forms.ChoiceField(
        required=False, choices=[("", "Any outcome"), *AuditEvent.Outcome.choices]
    )
    since = forms.DateTimeField(
        required=False,
        label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}),
    )
    until = forms.DateTimeField(
        required=False,
        label="Until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            select = isinstance(field.widget, forms.Select)
            css = "form-select form-select-sm" if select else "form-control form-control-sm"
            if self.is_bound and name in self.errors:
                css += " is-invalid"
            field.widget.attrs["class"] = css

    def criteria(self) -> EventFilter:
        """The filter from the fields that are valid; invalid ones show their error instead."""
        if not self.is_bound:
            return EventFilter()
        self.is_valid()
        data = self.cleaned_data
        return EventFilter(
            who=data.get("who") or "",
            action=data.get("action") or "",
            resource=data.get("resource") or "",
            outcome=data.get("outcome") or "",
            since=data.get("since"),
            until=data.get("until"),
        )
