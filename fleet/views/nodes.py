"""Fleet Manager's node list: counts by status, filters, sort, pages, live rows, bulk tags."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from access.authorization import Principal, is_allowed, principal_of
from fleet import selectors, services
from fleet.filters import NodeFilter
from fleet.forms import BulkTagsForm
from fleet.querysets import DESCRIBE_ACTIVATIONS
from fleet.services.node_tags import ADD_TAGS, REMOVE_TAGS
from fleet.views.common import PAGE_SIZE, HtmxHttpRequest, fleet_page, wants_partial

LIST_TEMPLATE = "fleet/node_list.html"


def _listing(request: HtmxHttpRequest) -> tuple[selectors.NodeListing, dict[str, object]]:
    principal = principal_of(request)
    filters = NodeFilter(request.GET or None, principal=principal)
    listing = selectors.node_listing(principal=principal, filters=filters)
    context = {
        "filters": filters,
        "counts": listing.counts,
        "sort_columns": filters.sort_columns(),
    }
    return listing, context


def _may_tag_some_node(principal: Principal) -> bool:
    """Whether to offer bulk tagging; the service still decides node by node."""
    return selectors.may_act_on_some_node(principal, ADD_TAGS) or selectors.may_act_on_some_node(
        principal, REMOVE_TAGS
    )


@login_required
@require_GET
@vary_on_headers("HX-Request")
@fleet_page
def node_list(request: HtmxHttpRequest) -> HttpResponse:
    listing, context = _listing(request)
    principal = principal_of(request)
    context |= {
        "page": Paginator(listing.nodes, PAGE_SIZE).get_page(request.GET.get("page")),
        "can_tag": _may_tag_some_node(principal),
        "may_list_groups": is_allowed(principal, selectors.LIST_GROUPS),
        "may_list_activations": is_allowed(principal, DESCRIBE_ACTIVATIONS),
    }
    template = f"{LIST_TEMPLATE}#results" if wants_partial(request) else LIST_TEMPLATE
    return render(request, template, context)


@login_required
@require_GET
@fleet_page
def node_counts(request: HtmxHttpRequest) -> HttpResponse:
    """The counts by status alone, refetched when node statuses change."""
    return render(request, f"{LIST_TEMPLATE}#counts", _listing(request)[1])


@login_required
@require_GET
@fleet_page
def node_row(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    """One row of the list, refetched when that node's status changes (authorized again)."""
    principal = principal_of(request)
    node = selectors.node_get(principal=principal, node_id=node_id)
    return render(
        request, f"{LIST_TEMPLATE}#row", {"node": node, "can_tag": _may_tag_some_node(principal)}
    )


@login_required
@require_POST
@fleet_page
def node_bulk_tags(request: HtmxHttpRequest) -> HttpResponse:
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("fleet:nodes")
    form = BulkTagsForm(request.POST)
    if not form.is_valid():
        for error in [*form.non_field_errors(), *form.errors.get("tags", [])]:
            messages.error(request, f"No tags changed: {error}")
        return redirect(back)
    data = form.cleaned_data
    result = services.node_tags_bulk_edit(
        principal=principal_of(request),
        node_ids=data["node"],
        add=data.get("add") if data["operation"] == "add" else None,
        remove=data.get("keys") if data["operation"] == "remove" else None,
    )
    verb = "Tagged" if data["operation"] == "add" else "Removed tags from"
    if result.changed:
        messages.success(request, f"{verb} {len(result.changed)} node(s).")
    if result.refused:
        messages.error(
            request,
            f"Not allowed on {len(result.refused)} node(s), left untouched: "
            + ", ".join(result.refused),
        )
    for node_id, reason in result.skipped.items():
        messages.warning(request, f"{node_id} skipped: {reason}.")
    return redirect(back)
