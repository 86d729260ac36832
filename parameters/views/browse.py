"""The Parameter Store list: the hierarchy as a tree, one level (or a search below it) at a time,
a page of 50 through the describe selector's NextTokens, and recent policy notices."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from access.authorization import principal_of
from parameters import selectors
from parameters.exceptions import InvalidNextToken, ParameterError
from parameters.forms import ParameterFilterForm
from parameters.models import Parameter
from parameters.services import PUT
from parameters.views.common import (
    HtmxHttpRequest,
    may_some,
    parameter_page,
    require_some,
    wants_partial,
)
from parameters.views.tree import ancestors, folder_tree

LIST_TEMPLATE = "parameters/list.html"
PAGE_SIZE = selectors.MAX_DESCRIBE_PAGE
NOTICES_SHOWN = 8


def _label_counts(parameters: list[Parameter]) -> dict[int, int]:
    rows = (
        Parameter.objects.filter(pk__in=[p.pk for p in parameters])
        .annotate(label_count=Count("labels"))
        .values_list("pk", "label_count")
    )
    return dict(rows)


def _page_links(request: HtmxHttpRequest, chain: list[str], next_token: str | None) -> dict:
    """Pages are NextTokens; the tokens of the pages before this one ride along in the query
    (`after`), so Previous works without keeping state on the server."""

    def with_chain(tokens: list[str]) -> str:
        query: QueryDict = request.GET.copy()
        query.setlist("after", tokens)
        return "?" + query.urlencode()

    return {
        "number": len(chain) + 1,
        "first": with_chain([]) if chain else None,
        "previous": with_chain(chain[:-1]) if chain else None,
        "next": with_chain([*chain, next_token]) if next_token else None,
    }


def _breadcrumbs(path: str) -> list[tuple[str, str]]:
    return [(crumb.rsplit("/", 1)[1], crumb) for crumb in ancestors(path)]


@login_required
@require_GET
@vary_on_headers("HX-Request")
@parameter_page
def parameter_list(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    require_some(principal, selectors.DESCRIBE)
    filters = ParameterFilterForm(request.GET)
    path = filters.current_path
    chain = [token for token in request.GET.getlist("after") if token]
    items: list[Any] = []
    next_token: str | None = None
    error = ""
    if filters.is_valid():
        try:
            page = selectors.parameters_describe(
                principal=principal,
                parameter_filters=filters.parameter_filters(),
                max_results=PAGE_SIZE,
                next_token=chain[-1] if chain else None,
            )
        except InvalidNextToken:
            error = "That page is out of date (the filters changed): showing the first page."
            chain = []
            page = selectors.parameters_describe(
                principal=principal, parameter_filters=filters.parameter_filters()
            )
        except ParameterError as refused:
            error = refused.message
            page = selectors.Page(items=[])
        items, next_token = page.items, page.next_token
    tree = folder_tree(principal)
    counts = _label_counts([item.parameter for item in items])
    rows = [(item.parameter, counts.get(item.parameter.pk, 0)) for item in items]
    context = {
        "filters": filters,
        "path": path,
        "breadcrumbs": _breadcrumbs(path),
        "searching": filters.searching,
        "folders": [] if filters.searching or chain else tree.children(path),
        "tree": tree.expanded_to(path),
        "rows": rows,
        "pages": _page_links(request, chain, next_token),
        "error": error,
        "notices": selectors.parameter_notices(principal=principal, limit=NOTICES_SHOWN),
        "can_create": may_some(principal, PUT),
        "can_export": may_some(principal, selectors.GET_BY_PATH),
    }
    template = f"{LIST_TEMPLATE}#results" if wants_partial(request) else LIST_TEMPLATE
    return render(request, template, context)


@login_required
@require_GET
@parameter_page
def folder_children(request: HtmxHttpRequest) -> HttpResponse:
    """One folder's subfolders, fetched when it is opened in the tree."""
    principal = principal_of(request)
    require_some(principal, selectors.DESCRIBE)
    filters = ParameterFilterForm(request.GET)
    path = filters.current_path
    folders = folder_tree(principal).children(path)
    return render(request, "parameters/folder_tree.html", {"folders": folders, "path": path})
