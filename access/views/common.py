"""What the access pages share: the acting principal, denials as 403, confirmation pages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from access.authorization import Principal, authorize, is_allowed, principal_of
from bosun.lib.errors import AccessDenied

PAGE_SIZE = 25


def require(request: HttpRequest, action: str, resource: str = "*") -> Principal:
    """Authorize (auditing a denial) or raise AccessDenied, which `denied_as_403` turns into 403."""
    principal = principal_of(request)
    authorize(principal, action, resource)
    return principal


def may(request: HttpRequest, action: str, resource: str = "*") -> bool:
    """For buttons: whether to offer an action (the service still decides on POST)."""
    return is_allowed(principal_of(request), action, resource)


def denied_as_403(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A service's AccessDenied becomes Django's PermissionDenied: the branded 403 page."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except AccessDenied as denied:
            raise PermissionDenied(str(denied)) from None

    return wrapped


def paginate(request: HttpRequest, queryset: QuerySet[Any]) -> Page:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def confirm(
    request: HttpRequest,
    *,
    title: str,
    message: str,
    button: str,
    cancel_url: str,
    danger: bool = True,
    fields: dict[str, str] | None = None,
) -> HttpResponse:
    """The page a destructive action shows on GET: what will happen, and one button to do it."""
    return render(
        request,
        "access/confirm.html",
        {
            "title": title,
            "message": message,
            "button": button,
            "cancel_url": cancel_url,
            "danger": danger,
            "fields": fields or {},
        },
    )
