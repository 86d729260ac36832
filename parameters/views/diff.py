"""Two versions of a parameter side by side: their settings, and a diff of their values.

Plain values are compared at once. A SecureString's versions are compared only when asked
with an explicit POST: the selector authorizes and audits both decryptions, and the answer,
which holds the plaintexts, is never stored.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods

from access.authorization import Principal, principal_of
from bosun.lib.diff import diff_lines
from bosun.lib.errors import AccessDenied
from parameters import selectors
from parameters.forms import VersionPairForm
from parameters.models import Parameter, ParameterType
from parameters.views.common import (
    HtmxHttpRequest,
    name_of,
    never_stored,
    parameter_page,
    wants_partial,
)
from parameters.views.detail import full_history

DIFF_TEMPLATE = "parameters/diff.html"
SETTINGS = (
    ("Type", "type"),
    ("Tier", "tier"),
    ("Data type", "data_type"),
    ("Description", "description"),
    ("Allowed pattern", "allowed_pattern"),
    ("KMS key", "key_id"),
    ("Modified by", "modified_user"),
    ("Modified at", "modified_at"),
)


def _pair(
    request: HtmxHttpRequest, versions: list[int], current: int
) -> tuple[VersionPairForm, int, int]:
    data = request.POST if request.method == "POST" else request.GET
    default_b = current
    default_a = max((v for v in versions if v < current), default=current)
    form = VersionPairForm({"a": data.get("a", default_a), "b": data.get("b", default_b)})
    if form.is_valid():
        return form, form.cleaned_data["a"], form.cleaned_data["b"]
    return form, default_a, default_b


def _settings(old: Any, new: Any) -> list[tuple[str, Any, Any, bool]]:
    rows = []
    for label, attribute in SETTINGS:
        before, after = getattr(old.row, attribute), getattr(new.row, attribute)
        rows.append((label, before, after, before != after))
    before, after = ", ".join(old.labels), ", ".join(new.labels)
    rows.append(("Labels", before, after, before != after))
    return rows


@sensitive_variables()
def _decrypted_values(
    principal: Principal, parameter: Parameter, a: int, b: int
) -> tuple[str, str]:
    return tuple(  # type: ignore[return-value]
        selectors.parameter_get(
            principal=principal, name=f"{parameter.name}:{version}", with_decryption=True
        ).value
        for version in (a, b)
    )


@login_required
@require_http_methods(["GET", "POST"])
@parameter_page
@sensitive_variables("before", "after", "context")
def parameter_diff(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    parameter = selectors.parameter_find(
        principal=principal, name=name_of(request), action=selectors.HISTORY
    )
    history = {entry.row.version: entry for entry in full_history(principal, parameter)}
    versions = sorted(history, reverse=True)
    form, a, b = _pair(request, versions, parameter.version)
    context: dict[str, Any] = {
        "parameter": parameter,
        "versions": versions,
        "form": form,
        "a": a,
        "b": b,
        "lines": None,
        "refusal": "",
        "missing": [v for v in (a, b) if v not in history],
    }
    if context["missing"]:
        return render(request, DIFF_TEMPLATE, context, status=404)
    old, new = history[a], history[b]
    secure = ParameterType.SECURE_STRING in (old.row.type, new.row.type)
    context |= {"settings": _settings(old, new), "secure": secure}
    names = {"old_name": f"version {a}", "new_name": f"version {b}"}
    if not secure:
        context["lines"] = diff_lines(old.value, new.value, **names)
        return render(request, DIFF_TEMPLATE, context)
    if request.method == "GET":
        return render(request, DIFF_TEMPLATE, context)
    template = f"{DIFF_TEMPLATE}#values" if wants_partial(request) else DIFF_TEMPLATE
    try:
        before, after = _decrypted_values(principal, parameter, a, b)
    except AccessDenied as denied:
        context["refusal"] = denied.message
        return never_stored(render(request, template, context, status=403))
    context["lines"] = diff_lines(before, after, **names)
    return never_stored(render(request, template, context))
