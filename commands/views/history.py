"""Run Command's history: every command, newest first, filtered, a page at a time; the
running ones on the page refresh themselves until they end."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from access.authorization import Principal, principal_of
from commands import selectors
from commands.forms import CommandFilterForm
from commands.models import Document
from commands.services.send import SEND
from commands.views.common import PAGE_SIZE, HtmxHttpRequest, commands_page, wants_partial
from commands.views.progress import live_progress

LIST_TEMPLATE = "commands/list.html"


@login_required
@require_GET
@vary_on_headers("HX-Request")
@commands_page
def command_list(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    filters = CommandFilterForm(request.GET or None)
    criteria = filters.criteria()
    commands = selectors.commands_list(
        principal=principal,
        filters=selectors.CommandFilter(
            status=criteria.get("status", ""),
            document_name=criteria.get("document", ""),
            node_id=criteria.get("node", ""),
            requested_by=criteria.get("requested_by", ""),
            search=criteria.get("q", ""),
        ),
    )
    page = Paginator(commands, PAGE_SIZE).get_page(request.GET.get("page"))
    live = live_progress(page.object_list)
    # An ended command's counts are final on its row; a running one's are counted live.
    rows = [(command, live.get(command.pk)) for command in page.object_list]
    context = {
        "filters": filters,
        "filtering": bool(criteria),
        "page": page,
        "rows": rows,
        "running": bool(live),
        "can_send": may_send_some(principal),
        "document_names": list(
            Document.objects.visible_to(principal).values_list("name", flat=True)
        ),
    }
    template = f"{LIST_TEMPLATE}#results" if wants_partial(request) else LIST_TEMPLATE
    return render(request, template, context)


def may_send_some(principal: Principal) -> bool:
    """Whether to offer "Run a command": policy allows sending some document (the send
    page, and the service, decide again)."""
    return Document.objects.visible_to(principal, SEND).exists()
