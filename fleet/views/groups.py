"""Resource group pages: list, create and edit with a live preview, detail, delete."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from access.authorization import Principal, authorize, is_allowed, principal_of
from access.views.common import confirm
from fleet import selectors, services
from fleet.exceptions import FleetValidationError
from fleet.forms import ResourceGroupForm, query_as_text, query_from_text
from fleet.models import ResourceGroup
from fleet.scope import resource_group_arn
from fleet.services.resource_groups import CREATE_GROUP, DELETE_GROUP, UPDATE_GROUP
from fleet.views.common import PAGE_SIZE, HtmxHttpRequest, fleet_page, render_form

FORM_TEMPLATE = "fleet/group_form.html"
PREVIEW_SIZE = 20


@login_required
@require_GET
@fleet_page
def group_list(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    groups = selectors.resource_group_listing(principal)
    return render(
        request,
        "fleet/group_list.html",
        {
            "page": Paginator(groups, PAGE_SIZE).get_page(request.GET.get("page")),
            "can_create": is_allowed(principal, CREATE_GROUP, resource_group_arn("*")),
        },
    )


@login_required
@require_GET
@fleet_page
def group_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    principal = principal_of(request)
    group = selectors.resource_group_get(principal=principal, name=name)
    nodes = selectors.tag_query_nodes(principal, group.query)
    return render(
        request,
        "fleet/group_detail.html",
        {
            "group": group,
            "arn": resource_group_arn(group.name),
            "query_text": query_as_text(group.query),
            "nodes": Paginator(nodes, PAGE_SIZE).get_page(request.GET.get("page")),
            "can_edit": is_allowed(principal, UPDATE_GROUP, resource_group_arn(group.name)),
            "can_delete": is_allowed(principal, DELETE_GROUP, resource_group_arn(group.name)),
        },
    )


def _preview(principal: Principal, text: str) -> dict[str, Any]:
    """The nodes a query being typed matches (only those the principal may see)."""
    if not text.strip():
        return {"preview_error": "", "preview": None}
    try:
        nodes = selectors.tag_query_nodes(principal, query_from_text(text))
    except FleetValidationError as error:
        return {"preview_error": error.message, "preview": None}
    return {
        "preview_error": "",
        "preview": nodes[:PREVIEW_SIZE],
        "preview_count": nodes.count(),
    }


@login_required
@require_GET
@fleet_page
def group_preview(request: HtmxHttpRequest) -> HttpResponse:
    context = _preview(principal_of(request), request.GET.get("query", ""))
    return render(request, f"{FORM_TEMPLATE}#preview", context)


def _editor(
    request: HtmxHttpRequest,
    form: ResourceGroupForm,
    *,
    group: ResourceGroup | None = None,
    error: str = "",
) -> HttpResponse:
    text = form["query"].value() or ""
    context = {"form": form, "group": group, "error": error}
    context |= _preview(principal_of(request), str(text))
    return render_form(request, FORM_TEMPLATE, context, invalid=bool(error or form.errors))


@login_required
@require_http_methods(["GET", "POST"])
@fleet_page
def group_create(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    authorize(principal, CREATE_GROUP, resource_group_arn("*"))
    if request.method == "GET":
        return _editor(request, ResourceGroupForm())
    form = ResourceGroupForm(request.POST)
    if not form.is_valid():
        return _editor(request, form)
    try:
        group = services.resource_group_create(
            principal=principal,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            query=form.cleaned_data["query"],
        )
    except FleetValidationError as error:
        return _editor(request, form, error=error.message)
    messages.success(request, f"Resource group {group.name} created.")
    return redirect("fleet:group", name=group.name)


@login_required
@require_http_methods(["GET", "POST"])
@fleet_page
def group_edit(request: HtmxHttpRequest, name: str) -> HttpResponse:
    principal = principal_of(request)
    group = selectors.resource_group_get(principal=principal, name=name)
    authorize(principal, UPDATE_GROUP, resource_group_arn(group.name))
    initial = {
        "name": group.name,
        "description": group.description,
        "query": query_as_text(group.query),
    }
    if request.method == "GET":
        return _editor(request, ResourceGroupForm(initial=initial, editing=True), group=group)
    form = ResourceGroupForm(request.POST, initial=initial, editing=True)
    if not form.is_valid():
        return _editor(request, form, group=group)
    try:
        services.resource_group_update(
            principal=principal,
            name=group.name,
            description=form.cleaned_data["description"],
            query=form.cleaned_data["query"],
        )
    except FleetValidationError as error:
        return _editor(request, form, group=group, error=error.message)
    messages.success(request, f"Resource group {group.name} saved.")
    return redirect("fleet:group", name=group.name)


@login_required
@require_http_methods(["GET", "POST"])
@fleet_page
def group_delete(request: HtmxHttpRequest, name: str) -> HttpResponse:
    principal = principal_of(request)
    group = selectors.resource_group_get(principal=principal, name=name)
    if request.method == "GET":
        authorize(principal, DELETE_GROUP, resource_group_arn(group.name))
        return confirm(
            request,
            title=f"Delete resource group {group.name}?",
            message="The saved query is removed; the nodes and their tags are untouched. "
            "Commands and sessions that target this group by name stop finding it.",
            button="Delete group",
            cancel_url=reverse("fleet:group", args=[group.name]),
        )
    services.resource_group_delete(principal=principal, name=group.name)
    messages.success(request, f"Resource group {group.name} deleted.")
    return redirect("fleet:groups")
