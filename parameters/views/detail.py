"""One parameter's page: metadata, its value (a SecureString's masked until revealed), tags,
labels, policies and history; the reveal itself; deletion behind a confirmation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.authorization import Principal, principal_of
from access.views.common import confirm
from bosun.lib.errors import AccessDenied
from parameters import policies as policy_rules
from parameters import selectors, services
from parameters.forms import LabelForm, TagsForm
from parameters.models import Parameter
from parameters.scope import parameter_arn
from parameters.views.common import (
    HtmxHttpRequest,
    allowed_on,
    detail_url,
    list_url,
    name_of,
    never_stored,
    parameter_page,
    wants_partial,
)

DETAIL_TEMPLATE = "parameters/detail.html"
REVEALED_TEMPLATE = "parameters/revealed.html"
HISTORY_PER_PAGE = 20
# What the page offers, each shown only to whom policy would allow it on this parameter.
ACTIONS = {
    "can_get": selectors.GET,
    "can_history": selectors.HISTORY,
    "can_list_tags": selectors.LIST_TAGS,
    "can_edit": services.PUT,
    "can_delete": services.DELETE,
    "can_label": services.LABEL,
    "can_unlabel": services.UNLABEL,
    "can_add_tags": services.ADD_TAGS,
    "can_remove_tags": services.REMOVE_TAGS,
}


@dataclass(frozen=True)
class PolicyRow:
    type: str
    summary: str
    status: str
    text: str


def policy_rows(parameter: Parameter) -> list[PolicyRow]:
    rows = []
    for policy in policy_rules.public(parameter.policies):
        try:
            attributes = json.loads(policy["PolicyText"]).get("Attributes", {})
        except ValueError:
            attributes = {}
        rows.append(
            PolicyRow(
                type=policy["PolicyType"],
                summary=_policy_summary(policy["PolicyType"], attributes),
                status=policy["PolicyStatus"],
                text=policy["PolicyText"],
            )
        )
    return rows


def _policy_summary(kind: str, attributes: dict[str, Any]) -> str:
    unit = str(attributes.get("Unit", "")).lower()
    if kind == policy_rules.EXPIRATION:
        stamp = str(attributes.get("Timestamp", ""))
        try:
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return f"Deleted at {stamp}"
        return f"Deleted at {moment:%Y-%m-%d %H:%M} UTC"
    if kind == policy_rules.EXPIRATION_NOTIFICATION:
        return f"Notice {attributes.get('Before')} {unit} before it expires"
    if kind == policy_rules.NO_CHANGE_NOTIFICATION:
        return f"Notice when unchanged for {attributes.get('After')} {unit}"
    return kind


def full_history(principal: Principal, parameter: Parameter) -> list[selectors.HistoryEntry]:
    """Every kept version (at most 100: a few selector pages), oldest first, no values opened."""
    entries: list[selectors.HistoryEntry] = []
    token: str | None = None
    while True:
        page = selectors.parameter_history(
            principal=principal, name=parameter.name, next_token=token
        )
        entries.extend(page.items)
        token = page.next_token
        if not token:
            return entries


def _value_context(principal: Principal, parameter: Parameter, can: dict[str, bool]) -> dict:
    value = None
    if can["can_get"] and not parameter.is_secure:
        value = selectors.parameter_get(principal=principal, name=parameter.name).value
    return {"parameter": parameter, "value": value, **can}


def detail_context(request: HtmxHttpRequest, parameter: Parameter, **extra: Any) -> dict[str, Any]:
    principal = principal_of(request)
    can = allowed_on(principal, parameter, ACTIONS)
    history = full_history(principal, parameter) if can["can_history"] else []
    labels = sorted((label, entry.row.version) for entry in history for label in entry.labels)
    tags = (
        selectors.parameter_tags(principal=principal, name=parameter.name)
        if can["can_list_tags"]
        else None
    )
    versions = [entry.row.version for entry in reversed(history)]
    context: dict[str, Any] = {
        **_value_context(principal, parameter, can),
        "arn": parameter_arn(parameter.name),
        "tags": sorted(tags.items()) if tags is not None else None,
        "labels": labels,
        "versions": versions,
        "history": Paginator(list(reversed(history)), HISTORY_PER_PAGE).get_page(
            request.GET.get("history")
        ),
        "policies": policy_rows(parameter),
        "diff_a": versions[1] if len(versions) > 1 else None,
        "diff_b": versions[0] if versions else None,
        "tags_form": TagsForm(),
        "label_form": LabelForm(initial={"version": parameter.version}),
    }
    return context | extra


def _parameter(request: HtmxHttpRequest) -> Parameter:
    return selectors.parameter_find(principal=principal_of(request), name=name_of(request))


@login_required
@require_GET
@parameter_page
def parameter_detail(request: HtmxHttpRequest) -> HttpResponse:
    parameter = _parameter(request)
    return render(request, DETAIL_TEMPLATE, detail_context(request, parameter))


@login_required
@require_GET
@parameter_page
def parameter_history(request: HtmxHttpRequest) -> HttpResponse:
    """The history card alone: a page of it, or fresh after labels moved."""
    parameter = _parameter(request)
    template = f"{DETAIL_TEMPLATE}#history" if wants_partial(request) else DETAIL_TEMPLATE
    return render(request, template, detail_context(request, parameter))


@login_required
@require_GET
@parameter_page
def parameter_value(request: HtmxHttpRequest) -> HttpResponse:
    """The value card as the page shows it: a SecureString masked again after a reveal."""
    parameter = _parameter(request)
    if not wants_partial(request):
        return redirect(detail_url(parameter.name))
    principal = principal_of(request)
    context = _value_context(principal, parameter, allowed_on(principal, parameter, ACTIONS))
    return render(request, f"{DETAIL_TEMPLATE}#value", context)


@login_required
@require_POST
@parameter_page
@sensitive_variables("revealed", "context")
def parameter_reveal(request: HtmxHttpRequest) -> HttpResponse:
    """The plaintext of a SecureString, for this response only: the selector authorizes
    ssm:GetParameter and kms:Decrypt and audits the decryption; nothing may keep the answer."""
    principal = principal_of(request)
    name = name_of(request)
    try:
        revealed = selectors.parameter_get(principal=principal, name=name, with_decryption=True)
    except AccessDenied as denied:
        if not wants_partial(request):
            raise
        refused = {"refusal": denied.message, "name": name}
        return never_stored(render(request, f"{REVEALED_TEMPLATE}#refused", refused, status=403))
    context: dict[str, Any] = {"revealed": revealed, "in_card": wants_partial(request)}
    template = f"{REVEALED_TEMPLATE}#value" if wants_partial(request) else REVEALED_TEMPLATE
    return never_stored(render(request, template, context))


@login_required
@require_http_methods(["GET", "POST"])
@parameter_page
def parameter_delete(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    parameter = selectors.parameter_find(
        principal=principal, name=name_of(request), action=services.DELETE
    )
    if request.method == "GET":
        versions = parameter.version
        return confirm(
            request,
            title=f"Delete parameter {parameter.name}?",
            message=f"The parameter, its versions (the newest is {versions}), labels and tags "
            "are deleted at once and cannot be restored. Anything that reads it (services, "
            "runbooks, Terraform) stops finding it.",
            button="Delete parameter",
            cancel_url=detail_url(parameter.name),
            fields={"name": parameter.name},
        )
    services.parameter_delete(principal=principal, name=parameter.name)
    messages.success(request, f"Parameter {parameter.name} deleted.")
    return redirect(list_url(parameter.parent_path))
