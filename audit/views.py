"""The audit trail pages: the filtered, paginated list and one event's detail."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails

from access.adapters import requires
from audit import selectors
from audit.forms import EventFilterForm
from audit.permissions import READ_ACTION, events_readable_by

PAGE_SIZE = 50


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@requires(READ_ACTION)
@require_GET
@vary_on_headers("HX-Request")
def event_list(request: HtmxHttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET or None)
    events = selectors.events_filter(events_readable_by(request.user), form.criteria())
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    # htmx asks for the results only; a plain GET (no JavaScript, a shared link) gets the page.
    # (htmx restoring a page missing from its history cache wants the whole page, too.)
    partial = request.htmx and not request.htmx.history_restore_request
    template = "audit/events.html#results" if partial else "audit/events.html"
    return render(request, template, {"form": form, "page": page})


@requires(READ_ACTION)
@require_GET
def event_detail(request: HttpRequest, sequence: int) -> HttpResponse:
    visible = events_readable_by(request.user)
    event = get_object_or_404(visible, sequence=sequence)
    neighbours = set(
        visible.filter(sequence__in=(sequence - 1, sequence + 1)).values_list("sequence", flat=True)
    )
    return render(
        request,
        "audit/event_detail.html",
        {
            "event": event,
            "params": json.dumps(event.params, indent=2, ensure_ascii=False, sort_keys=True),
            "previous": sequence - 1 if sequence - 1 in neighbours else None,
            "next": sequence + 1 if sequence + 1 in neighbours else None,
        },
    )
