"""Webhook pages: list, create (the secret shown once), detail with deliveries, edit, delete,
send a test event, retry a failed delivery. Each calls one service or selector."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.authorization import authorize, is_allowed, principal_of
from access.views.common import confirm
from bosun.lib.pages import HtmxHttpRequest, never_stored, service_page
from webhooks import selectors, services
from webhooks.exceptions import WebhookError
from webhooks.forms import WebhookEditForm, WebhookForm
from webhooks.models import MANAGE_WEBHOOKS, DeliveryState, WebhookEndpoint, webhook_arn

PAGE_SIZE = 50
DELIVERIES_PAGE_SIZE = 25


def _back_to_endpoint(kwargs: Mapping[str, Any]) -> str:
    endpoint_id = kwargs.get("endpoint_id")
    if endpoint_id is None:
        return reverse("webhooks:endpoints")
    return reverse("webhooks:endpoint", kwargs={"endpoint_id": endpoint_id})


# A refusal becomes the branded 403, an unknown webhook the 404; a refused action that was
# posted comes back as a message on the page it came from (forms show theirs inline).
webhook_page = service_page(_back_to_endpoint)


def _form_response(
    request: HtmxHttpRequest, template: str, context: dict[str, Any], *, invalid: bool
) -> HttpResponse:
    return render(request, template, context, status=400 if invalid else 200)


def _secret_shown(
    request: HtmxHttpRequest, endpoint: WebhookEndpoint, secret: str, *, created: bool
) -> HttpResponse:
    """The only response that ever carries the secret: rendered, never redirected to, and
    kept by no browser or proxy."""
    response = render(
        request,
        "webhooks/secret.html",
        {"endpoint": endpoint, "secret": secret, "created": created},
        status=201 if created else 200,
    )
    return never_stored(response)


@login_required
@require_GET
@webhook_page
def endpoint_list(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    endpoints = selectors.webhook_endpoint_listing(principal)
    return render(
        request,
        "webhooks/endpoint_list.html",
        {
            "page": Paginator(endpoints, PAGE_SIZE).get_page(request.GET.get("page")),
            "can_create": is_allowed(principal, MANAGE_WEBHOOKS, webhook_arn("*")),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@webhook_page
def endpoint_create(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    authorize(principal, MANAGE_WEBHOOKS, webhook_arn("*"))
    form = WebhookForm(request.POST if request.method == "POST" else None)
    error = ""
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint, secret = services.webhook_endpoint_create(
                principal=principal,
                name=data["name"],
                url=data["url"],
                events=data["events"],
                enabled=data["enabled"],
            )
        except WebhookError as problem:
            error = problem.message
        else:
            return _secret_shown(request, endpoint, secret, created=True)
    return _form_response(
        request,
        "webhooks/endpoint_form.html",
        {"form": form, "error": error, "endpoint": None},
        invalid=bool(error or form.errors),
    )


def _deliveries_context(request: HttpRequest, endpoint: WebhookEndpoint) -> dict[str, Any]:
    deliveries = Paginator(selectors.webhook_deliveries(endpoint), DELIVERIES_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return {
        "endpoint": endpoint,
        "deliveries": deliveries,
        # The newest page refreshes itself while something is still on its way.
        "live": deliveries.number == 1
        and any(delivery.state == DeliveryState.PENDING for delivery in deliveries),
        "can_manage": is_allowed(principal_of(request), MANAGE_WEBHOOKS, endpoint.arn),
    }


@login_required
@require_GET
@webhook_page
def endpoint_detail(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    principal = principal_of(request)
    endpoint = selectors.webhook_endpoint_get(principal=principal, endpoint_id=endpoint_id)
    context = _deliveries_context(request, endpoint)
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "webhooks/endpoint_detail.html#deliveries", context)
    return render(request, "webhooks/endpoint_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@webhook_page
def endpoint_edit(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    principal = principal_of(request)
    endpoint = selectors.webhook_endpoint_get(principal=principal, endpoint_id=endpoint_id)
    authorize(principal, MANAGE_WEBHOOKS, endpoint.arn)
    if request.method == "POST":
        form = WebhookEditForm(request.POST)
    else:
        form = WebhookEditForm(initial=WebhookForm.initial_for(endpoint))
    error = ""
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            updated, secret = services.webhook_endpoint_update(
                principal=principal,
                endpoint_id=endpoint.pk,
                name=data["name"],
                url=data["url"],
                events=data["events"],
                enabled=data["enabled"],
                regenerate_secret=data["regenerate_secret"],
            )
        except WebhookError as problem:
            error = problem.message
        else:
            if secret is not None:
                return _secret_shown(request, updated, secret, created=False)
            messages.success(request, f"Webhook {updated.name} saved.")
            return redirect("webhooks:endpoint", endpoint_id=updated.pk)
    return _form_response(
        request,
        "webhooks/endpoint_form.html",
        {"form": form, "error": error, "endpoint": endpoint},
        invalid=bool(error or form.errors),
    )


@login_required
@require_http_methods(["GET", "POST"])
@webhook_page
def endpoint_delete(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    principal = principal_of(request)
    endpoint = selectors.webhook_endpoint_get(principal=principal, endpoint_id=endpoint_id)
    if request.method == "GET":
        authorize(principal, MANAGE_WEBHOOKS, endpoint.arn)
        return confirm(
            request,
            title=f"Delete the webhook {endpoint.name}?",
            message=f"Events stop going to {endpoint.url} at once; deliveries still queued are "
            "dropped and its delivery history is deleted.",
            button="Delete webhook",
            cancel_url=reverse("webhooks:endpoint", args=[endpoint.pk]),
        )
    services.webhook_endpoint_delete(principal=principal, endpoint_id=endpoint.pk)
    messages.success(request, f"Webhook {endpoint.name} deleted.")
    return redirect("webhooks:endpoints")


@login_required
@require_POST
@webhook_page
def endpoint_test(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    delivery = services.webhook_endpoint_test(
        principal=principal_of(request), endpoint_id=endpoint_id
    )
    messages.success(
        request, f"Test event queued as delivery {delivery.delivery_id}; its outcome shows below."
    )
    return redirect("webhooks:endpoint", endpoint_id=endpoint_id)


@login_required
@require_POST
@webhook_page
def delivery_retry(
    request: HtmxHttpRequest, endpoint_id: int, delivery_id: uuid.UUID
) -> HttpResponse:
    delivery = services.webhook_delivery_retry(
        principal=principal_of(request), endpoint_id=endpoint_id, delivery_id=delivery_id
    )
    messages.success(request, f"Delivery {delivery.delivery_id} queued again.")
    return redirect("webhooks:endpoint", endpoint_id=endpoint_id)
