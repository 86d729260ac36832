"""What the fleet pages share: errors as 403/404, partial responses for htmx, live updates."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from bosun.lib.pages import HtmxHttpRequest, service_page

PAGE_SIZE = 50


fleet_page = service_page("fleet:nodes")


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
