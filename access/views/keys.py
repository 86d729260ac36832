"""A user's access keys: create (the secret shown once), activate or deactivate, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from access import services
from access.authorization import authorize
from access.directory import user_arn
from access.exceptions import AccessKeyError
from access.models import AccessKey
from access.views.common import confirm, denied_as_403, principal_of


@login_required
@require_POST
@denied_as_403
def key_create(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    try:
        key, secret = services.access_key_create(principal=principal_of(request), user=user)
    except AccessKeyError as problem:
        messages.error(request, problem.message)
        return redirect("access:user", pk=user.pk)
    # The only response that ever carries the secret: rendered, not redirected to, and never
    # stored by the browser or a proxy.
    response = render(
        request,
        "access/key_created.html",
        {"subject": user, "key": key, "secret": secret},
        status=201,
    )
    add_never_cache_headers(response)
    response["Cache-Control"] += ", no-store"
    return response


def _key(pk: int, key_pk: int) -> AccessKey:
    return get_object_or_404(AccessKey.objects.select_related("user"), pk=key_pk, user_id=pk)


@login_required
@require_POST
@denied_as_403
def key_status(request: HttpRequest, pk: int, key_pk: int) -> HttpResponse:
    key = _key(pk, key_pk)
    active = request.POST.get("active") == "1"
    services.access_key_set_status(principal=principal_of(request), access_key=key, active=active)
    messages.success(
        request, f"Access key {key.access_key_id} {'activated' if active else 'deactivated'}."
    )
    return redirect("access:user", pk=pk)


@login_required
@require_http_methods(["GET", "POST"])
@denied_as_403
def key_delete(request: HttpRequest, pk: int, key_pk: int) -> HttpResponse:
    key = _key(pk, key_pk)
    if request.method == "GET":
        # Ask only whom the service would let do it.
        principal = principal_of(request)
        own = principal.user.pk == key.user.pk
        action = "bosun:ManageOwnAccessKeys" if own else "bosun:ManageAccessKeys"
        authorize(principal, action, user_arn(key.user))
        return confirm(
            request,
            title=f"Delete access key {key.access_key_id}?",
            message="Every client using this key is refused from now on. This cannot be "
            "undone; deactivate the key instead if you may need it again.",
            button="Delete access key",
            cancel_url=reverse("access:user", args=[pk]),
        )
    services.access_key_delete(principal=principal_of(request), access_key=key)
    messages.success(request, f"Access key {key.access_key_id} deleted.")
    return redirect("access:user", pk=pk)
