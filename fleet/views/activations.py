"""Hybrid activation pages: list with usage, create (the code shown once), detail, delete."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from access.authorization import authorize, is_allowed, principal_of
from access.views.common import confirm
from fleet import selectors, services
from fleet.exceptions import FleetValidationError
from fleet.forms import ActivationForm, tags_as_text
from fleet.services.activations import CREATE_ACTIVATION, DELETE_ACTIVATION
from fleet.views.common import PAGE_SIZE, HtmxHttpRequest, fleet_page, never_stored, render_form

# Where the agent comes from: it is not on PyPI; an operator installs it from the server's
# checkout (the agent/ directory) or a wheel built from it (`pip wheel ./agent`).
AGENT_PACKAGE = "bosun-agent"


def install_commands(request: HtmxHttpRequest, activation_id: str, code: str) -> str:
    """What to paste on a server: install the agent, register it here, start it."""
    url = request.build_absolute_uri("/")
    return (
        f"# {AGENT_PACKAGE} is not on PyPI: install it from the Bosun server's checkout\n"
        "# (pip install ./agent) or from a wheel built there (pip wheel ./agent).\n"
        f"sudo pip install {AGENT_PACKAGE}\n"
        f"sudo bosun-agent register --url {url} --activation-id {activation_id} "
        f"--activation-code {code} && sudo systemctl enable --now bosun-agent"
    )


@login_required
@require_GET
@fleet_page
def activation_list(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    activations = selectors.activation_listing(principal)
    return render(
        request,
        "fleet/activation_list.html",
        {
            "page": Paginator(activations, PAGE_SIZE).get_page(request.GET.get("page")),
            "can_create": is_allowed(principal, CREATE_ACTIVATION),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@fleet_page
def activation_create(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    authorize(principal, CREATE_ACTIVATION)
    form = ActivationForm(request.POST if request.method == "POST" else None)
    error = ""
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            activation, code = services.activation_create(
                principal=principal,
                description=data["description"],
                default_instance_name=data["default_instance_name"],
                registration_limit=data["registration_limit"],
                expires_at=timezone.now() + timedelta(hours=data["expires_in_hours"]),
                tags=data["tags"],
            )
        except FleetValidationError as problem:
            error = problem.message
        else:
            # The only response that ever carries the code: rendered, not redirected to.
            response = render(
                request,
                "fleet/activation_created.html",
                {
                    "activation": activation,
                    "code": code,
                    "commands": install_commands(request, activation.id, code),
                },
                status=201,
            )
            return never_stored(response)
    return render_form(
        request,
        "fleet/activation_form.html",
        {"form": form, "error": error},
        invalid=bool(error or form.errors),
    )


@login_required
@require_GET
@fleet_page
def activation_detail(request: HtmxHttpRequest, activation_id: str) -> HttpResponse:
    principal = principal_of(request)
    activation = selectors.activation_get(principal=principal, activation_id=activation_id)
    nodes = selectors.activation_nodes(activation, principal).with_tags()
    return render(
        request,
        "fleet/activation_detail.html",
        {
            "activation": activation,
            "tags_text": tags_as_text(activation.node_tags),
            "nodes": Paginator(nodes, PAGE_SIZE).get_page(request.GET.get("page")),
            "can_delete": is_allowed(principal, DELETE_ACTIVATION),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@fleet_page
def activation_delete(request: HtmxHttpRequest, activation_id: str) -> HttpResponse:
    principal = principal_of(request)
    activation = selectors.activation_get(principal=principal, activation_id=activation_id)
    if request.method == "GET":
        authorize(principal, DELETE_ACTIVATION)
        return confirm(
            request,
            title="Delete this activation?",
            message=f"No more servers can register with {activation.id}. The "
            f"{activation.registrations_count} node(s) it registered stay registered.",
            button="Delete activation",
            cancel_url=reverse("fleet:activation", args=[activation.id]),
        )
    services.activation_delete(principal=principal, activation_id=activation.id)
    messages.success(request, f"Activation {activation.id} deleted.")
    return redirect("fleet:activations")
