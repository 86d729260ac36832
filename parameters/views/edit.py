"""Create a parameter, or write its next version: one form, its errors beside their fields."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from access.authorization import principal_of
from bosun.lib.errors import AccessDenied, BosunError
from parameters import rules, selectors, services
from parameters.exceptions import ParameterError
from parameters.forms import DEFAULT_KEY, ParameterForm, policy_initial
from parameters.models import Parameter
from parameters.views.common import (
    HtmxHttpRequest,
    allowed_on,
    detail_url,
    list_url,
    name_of,
    never_stored,
    parameter_page,
    render_form,
    require_some,
)

FORM_TEMPLATE = "parameters/form.html"


def _editor(
    request: HtmxHttpRequest,
    form: ParameterForm,
    *,
    parameter: Parameter | None = None,
    error: str = "",
    cancel_url: str,
) -> HttpResponse:
    invalid = bool(error or form.errors)
    value_cleared = False
    if invalid and form.is_bound and form.data.get("type") == "SecureString":
        # A secret typed into the form is never sent back to the browser, not even to retry.
        form.data = {**dict(form.data.items()), "value": ""}
        value_cleared = bool(request.POST.get("value"))
    context: dict[str, Any] = {
        "form": form,
        "parameter": parameter,
        "error": error,
        "policy_error": form.policy_error,
        "value_cleared": value_cleared,
        "cancel_url": cancel_url,
    }
    return never_stored(render_form(request, FORM_TEMPLATE, context, invalid=invalid))


def _start_path(request: HtmxHttpRequest) -> str:
    try:
        return rules.parse_path(request.GET.get("path") or "/")
    except ParameterError:
        return "/"


@sensitive_variables("data")
def _put(
    request: HtmxHttpRequest, form: ParameterForm, *, editing: bool
) -> services.PutResult | str:
    """Write what the form says; the refusal's message when a service says no (after placing
    it beside its field)."""
    data = form.cleaned_data
    secure = form.secure
    try:
        return services.parameter_put(
            principal=principal_of(request),
            name=data["name"],
            value=data["value"],
            parameter_type=data["type"],
            description=data["description"],
            key_id=(data["key_id"] or DEFAULT_KEY) if secure else services.UNSET,
            overwrite=editing,
            allowed_pattern=data["allowed_pattern"],
            tags=None if editing else (data.get("tags") or None),
            tier=data["tier"],
            policies=form.policies_json()
            if not editing or form.policies_changed()
            else services.UNSET,
            data_type=data["data_type"],
        )
    except AccessDenied:
        raise
    except BosunError as error:
        return form.show_error(error) or "See the fields marked below."


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("value")
@parameter_page
def parameter_create(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    path = _start_path(request)
    require_some(principal, services.PUT, path)
    cancel = list_url(path)
    if request.method == "GET":
        initial = {"name": "" if path == "/" else f"{path}/"}
        return _editor(request, ParameterForm(initial=initial), cancel_url=cancel)
    form = ParameterForm(request.POST)
    if not form.is_valid():
        return _editor(request, form, cancel_url=cancel)
    result = _put(request, form, editing=False)
    if isinstance(result, str):
        return _editor(request, form, error=result, cancel_url=cancel)
    messages.success(request, f"Parameter {result.name} created (version {result.version}).")
    return redirect(detail_url(result.name))


def _initial(request: HtmxHttpRequest, parameter: Parameter) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "name": parameter.name,
        "description": parameter.description,
        "type": parameter.type,
        "tier": parameter.tier,
        "data_type": parameter.data_type,
        "key_id": parameter.key_id or DEFAULT_KEY,
        "allowed_pattern": parameter.allowed_pattern,
        **policy_initial(parameter.policies),
    }
    principal = principal_of(request)
    may_read = allowed_on(principal, parameter, {"get": selectors.GET})["get"]
    if not parameter.is_secure and may_read:
        # Plain values start from the current one; a SecureString's is never put in the form.
        initial["value"] = selectors.parameter_get(principal=principal, name=parameter.name).value
    return initial


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("value")
@parameter_page
def parameter_edit(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    parameter = selectors.parameter_find(
        principal=principal, name=name_of(request), action=services.PUT
    )
    initial = _initial(request, parameter)
    cancel = detail_url(parameter.name)
    options: dict[str, Any] = {"initial": initial, "editing": True, "secure": parameter.is_secure}
    if request.method == "GET":
        return _editor(request, ParameterForm(**options), parameter=parameter, cancel_url=cancel)
    form = ParameterForm(request.POST, **options)
    if not form.is_valid():
        return _editor(request, form, parameter=parameter, cancel_url=cancel)
    result = _put(request, form, editing=True)
    if isinstance(result, str):
        return _editor(request, form, parameter=parameter, error=result, cancel_url=cancel)
    messages.success(request, f"Saved {result.name} as version {result.version}.")
    return redirect(detail_url(result.name))
