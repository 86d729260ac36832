"""What the dashboard's pages share, whichever app they belong to: service errors rendered as
pages, form and fragment responses, and responses nobody may keep."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.middleware import HtmxDetails

from bosun.lib.errors import AccessDenied, BosunError

View = Callable[..., HttpResponse]


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def service_page(fallback: str | Callable[[Mapping[str, Any]], str]) -> Callable[[View], View]:
    """A decorator for pages that call services: a refusal becomes the branded 403, an unknown
    resource the 404. Forms show their own errors inline; any other refusal of a posted action
    comes back as a message on the page the action was posted from, else on `fallback` (a url
    name, or a function of the view's keyword arguments giving a URL)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except AccessDenied as denied:
                raise PermissionDenied(denied.message) from None
            except BosunError as error:
                if error.http_status == 404:
                    raise Http404(error.message) from None
                if request.method != "POST":
                    raise
                messages.error(request, error.message)
                referer = request.headers.get("Referer", "")
                if url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}):
                    return redirect(referer)
                return redirect(fallback(kwargs) if callable(fallback) else reverse(fallback))

        return wrapped

    return decorate


def wants_partial(request: HtmxHttpRequest) -> bool:
    """htmx asks for a fragment; a plain GET, a shared link or a history restore gets the page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def render_form(
    request: HtmxHttpRequest, template: str, context: dict[str, Any], *, invalid: bool
) -> HttpResponse:
    """A form page, 400 when it carries errors (htmx swaps only 2xx, so a fragment stays 200)."""
    status = 400 if invalid and not wants_partial(request) else 200
    return render(request, template, context, status=status)


def never_stored(response: HttpResponse) -> HttpResponse:
    """For the one response that carries a secret: no browser or proxy may keep it."""
    add_never_cache_headers(response)
    response["Cache-Control"] += ", no-store"
    return response
