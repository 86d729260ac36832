"""One node's page: overview, clone alert, host facts, tags, activity, and what can be done."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.authorization import Principal, principal_of
from access.views.common import confirm
from fleet import selectors, services
from fleet.codes import node_arn
from fleet.exceptions import FleetError
from fleet.forms import TagsForm
from fleet.models import ManagedNode, NodeStatus
from fleet.protocol import operations as agent_requests
from fleet.scope import node_decision_allowed
from fleet.services.node_tags import ADD_TAGS, REMOVE_TAGS
from fleet.services.nodes import DEREGISTER, RESOLVE_ALERT
from fleet.views.common import HtmxHttpRequest, fleet_page, render_form, wants_partial

DETAIL_TEMPLATE = "fleet/node_detail.html"
EVENTS_PER_PAGE = 20
SHOWN_FACTS = frozenset(
    {
        "hostname",
        "platform_type",
        "platform_name",
        "platform_version",
        "kernel_version",
        "architecture",
        "ip_addresses",
        "agent_version",
    }
)
# What the page offers a live node, each shown only to whom policy would allow it on it.
BUTTONS = {
    "can_add_tags": ADD_TAGS,
    "can_remove_tags": REMOVE_TAGS,
    "can_deregister": DEREGISTER,
    "can_refresh_facts": agent_requests.ACTION_REFRESH_FACTS,
    "can_rotate_key": agent_requests.ACTION_ROTATE_KEY,
}


def _context(request: HtmxHttpRequest, node: ManagedNode, **extra: Any) -> dict[str, Any]:
    principal = principal_of(request)
    tags = list(node.tags.all())
    pairs = [(tag.key, tag.value) for tag in tags]
    live = node.status != NodeStatus.DEREGISTERED
    context: dict[str, Any] = {
        "node": node,
        "arn": node_arn(node.pk),
        "tags": tags,
        "other_facts": _other_facts(node),
        "key_age": timezone.now() - node.key_rotated_at,
        "events": Paginator(selectors.node_events(node), EVENTS_PER_PAGE).get_page(
            request.GET.get("events")
        ),
        "tags_form": TagsForm(),
    }
    for name, action in BUTTONS.items():
        context[name] = live and node_decision_allowed(principal, action, node.pk, pairs)
    # A deregistered node's alert may still be dismissed: it is history worth tidying.
    context["can_clear_alert"] = node_decision_allowed(principal, RESOLVE_ALERT, node.pk, pairs)
    return context | extra


def _other_facts(node: ManagedNode) -> list[tuple[str, object]]:
    """Facts the agent reported beyond the ones the node's own columns show."""
    facts = node.facts if isinstance(node.facts, dict) else {}
    return sorted(
        (key.replace("_", " ").capitalize(), value)
        for key, value in facts.items()
        if key not in SHOWN_FACTS
    )


def _node(request: HtmxHttpRequest, node_id: str) -> ManagedNode:
    return selectors.node_get(principal=principal_of(request), node_id=node_id)


@login_required
@require_GET
@fleet_page
def node_detail(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    return render(request, DETAIL_TEMPLATE, _context(request, _node(request, node_id)))


@login_required
@require_GET
@fleet_page
def node_overview(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    """The overview card alone, refetched live when the node's status changes."""
    node = _node(request, node_id)
    return render(request, f"{DETAIL_TEMPLATE}#overview", _context(request, node))


@login_required
@require_GET
@fleet_page
def node_timeline(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    node = _node(request, node_id)
    template = f"{DETAIL_TEMPLATE}#timeline" if wants_partial(request) else DETAIL_TEMPLATE
    return render(request, template, _context(request, node))


def _tags_response(request: HtmxHttpRequest, node_id: str, **extra: Any) -> HttpResponse:
    if not wants_partial(request) and not extra:
        return redirect("fleet:node", node_id=node_id)
    node = _node(request, node_id)
    template = f"{DETAIL_TEMPLATE}#tags" if wants_partial(request) else DETAIL_TEMPLATE
    return render_form(request, template, _context(request, node, **extra), invalid=bool(extra))


@login_required
@require_POST
@fleet_page
def node_tags_add(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    form = TagsForm(request.POST)
    if not form.is_valid():
        return _tags_response(request, node_id, tags_form=form)
    try:
        services.node_tags_add(
            principal=principal_of(request), node_id=node_id, tags=form.cleaned_data["tags"]
        )
    except FleetError as error:
        if error.http_status == 404:
            raise
        form.add_error("tags", error.message)
        return _tags_response(request, node_id, tags_form=form)
    return _tags_response(request, node_id)


@login_required
@require_POST
@fleet_page
def node_tag_remove(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    services.node_tags_remove(
        principal=principal_of(request), node_id=node_id, keys=[request.POST.get("key", "")]
    )
    return _tags_response(request, node_id)


def _confirmed(
    request: HtmxHttpRequest, principal: Principal, action: str, node: ManagedNode
) -> bool:
    """GET asks (to whom policy would allow it); POST goes ahead."""
    if request.method == "POST":
        return True
    selectors.node_authorized(principal, action, node.pk)
    return False


@login_required
@require_http_methods(["GET", "POST"])
@fleet_page
def node_deregister(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    principal = principal_of(request)
    node = _node(request, node_id)
    if node.status == NodeStatus.DEREGISTERED:
        messages.info(request, f"{node.name} is already deregistered.")
        return redirect("fleet:node", node_id=node.pk)
    if not _confirmed(request, principal, DEREGISTER, node):
        return confirm(
            request,
            title=f"Deregister {node.name}?",
            message=f"{node.pk} is revoked at once: its agent stops and every later request "
            "from it is refused, and messages waiting for it are cancelled. Its record and "
            "timeline stay. To manage this server again, register it with a new activation.",
            button="Deregister node",
            cancel_url=reverse("fleet:node", args=[node.pk]),
        )
    services.node_deregister(principal=principal, node_id=node.pk)
    messages.success(request, f"{node.name} ({node.pk}) deregistered.")
    return redirect("fleet:node", node_id=node.pk)


@login_required
@require_http_methods(["GET", "POST"])
@fleet_page
def node_clear_alert(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    principal = principal_of(request)
    node = _node(request, node_id)
    if not _confirmed(request, principal, RESOLVE_ALERT, node):
        return confirm(
            request,
            title=f"Clear the suspected-clone alert on {node.name}?",
            message="Do this once you have checked which machine holds this node's identity. "
            "The registered machine stays the trusted one: a copy keeps being refused, and "
            "raises the alert again when it next calls.",
            button="Clear alert",
            cancel_url=reverse("fleet:node", args=[node.pk]),
            danger=False,
        )
    try:
        services.node_clone_alert_clear(principal=principal, node_id=node.pk)
    except FleetError as error:
        messages.info(request, error.message)
    else:
        messages.success(request, f"Suspected-clone alert on {node.name} cleared.")
    return redirect("fleet:node", node_id=node.pk)


@login_required
@require_POST
@fleet_page
def node_refresh_facts(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    agent_requests.node_refresh_facts_request(principal=principal_of(request), node_id=node_id)
    messages.success(request, "Asked the agent for fresh host facts; they appear when it answers.")
    return redirect("fleet:node", node_id=node_id)


@login_required
@require_POST
@fleet_page
def node_rotate_key(request: HtmxHttpRequest, node_id: str) -> HttpResponse:
    agent_requests.node_request_key_rotation(principal=principal_of(request), node_id=node_id)
    messages.success(request, "Asked the agent to rotate its key; it does so at its next call.")
    return redirect("fleet:node", node_id=node_id)
