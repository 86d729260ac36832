"""Session Manager's list: the sessions one may see, active and past, newest first, filtered,
a page at a time; a page showing an active session refreshes itself until none is."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from access.authorization import is_allowed, principal_of
from access.directory import user_arn
from fleet.selectors import may_act_on_some_node
from sessions.forms import SessionFilterForm
from sessions.selectors import sessions_visible
from sessions.services.preferences import READ, UPDATE, preferences_document_arn
from sessions.views.common import (
    PAGE_SIZE,
    START,
    HtmxHttpRequest,
    sessions_page,
    wants_partial,
)

LIST_TEMPLATE = "sessions/list.html"


@login_required
@require_GET
@vary_on_headers("HX-Request")
@sessions_page
def session_list(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    filters = SessionFilterForm(request.GET or None)
    sessions = filters.apply(sessions_visible(principal=principal)).select_related("node")
    page = Paginator(sessions.order_by("-started_at", "-id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "filters": filters,
        "filtering": bool(filters.criteria()),
        "page": page,
        "active": any(not session.is_ended for session in page.object_list),
        "can_start": may_act_on_some_node(principal, START),
        "owner_arn": user_arn(principal.user),
        "can_see_preferences": any(
            is_allowed(principal, action, preferences_document_arn()) for action in (UPDATE, READ)
        ),
    }
    template = f"{LIST_TEMPLATE}#results" if wants_partial(request) else LIST_TEMPLATE
    return render(request, template, context)
