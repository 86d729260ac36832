"""Tags and labels of one parameter, changed inline on its page (whole-page posts without JS)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from access.authorization import principal_of
from parameters import rules, selectors, services
from parameters.exceptions import ParameterError
from parameters.forms import LabelForm, TagsForm
from parameters.views.common import (
    HtmxHttpRequest,
    detail_url,
    name_of,
    parameter_page,
    render_form,
    wants_partial,
)
from parameters.views.detail import DETAIL_TEMPLATE, detail_context

# Other cards show labels too (the history): they refetch on this event.
LABELS_CHANGED = "parameter-labels-changed"


def _card(request: HtmxHttpRequest, card: str, **extra: Any) -> HttpResponse:
    name = name_of(request)
    if not wants_partial(request) and not extra:
        return redirect(detail_url(name))
    parameter = selectors.parameter_find(principal=principal_of(request), name=name)
    template = f"{DETAIL_TEMPLATE}#{card}" if wants_partial(request) else DETAIL_TEMPLATE
    context = detail_context(request, parameter, **extra)
    return render_form(request, template, context, invalid=bool(extra.get("invalid")))


@login_required
@require_POST
@parameter_page
def tags_add(request: HtmxHttpRequest) -> HttpResponse:
    form = TagsForm(request.POST)
    if form.is_valid():
        try:
            services.parameter_tags_add(
                principal=principal_of(request),
                name=name_of(request),
                tags=form.cleaned_data["tags"],
            )
        except ParameterError as error:
            if error.http_status == 404:
                raise
            form.add_error("tags", error.message)
    if form.errors:
        return _card(request, "tags", tags_form=form, invalid=True)
    return _card(request, "tags")


@login_required
@require_POST
@parameter_page
def tag_remove(request: HtmxHttpRequest) -> HttpResponse:
    services.parameter_tags_remove(
        principal=principal_of(request), name=name_of(request), keys=[request.POST.get("key", "")]
    )
    return _card(request, "tags")


def _labels_card(request: HtmxHttpRequest, **extra: Any) -> HttpResponse:
    response = _card(request, "labels", **extra)
    if wants_partial(request) and not extra.get("invalid"):
        response["HX-Trigger"] = LABELS_CHANGED
    return response


@login_required
@require_POST
@parameter_page
def label_attach(request: HtmxHttpRequest) -> HttpResponse:
    form = LabelForm(request.POST)
    if form.is_valid():
        label = form.cleaned_data["label"].strip()
        try:
            result = services.parameter_label(
                principal=principal_of(request),
                name=name_of(request),
                labels=[label],
                version=form.cleaned_data["version"],
            )
        except ParameterError as error:
            if error.http_status == 404 and error.code == "parameter_not_found":
                raise
            form.add_error("version" if error.http_status == 404 else "label", error.message)
        else:
            for invalid in result.invalid:
                problem = rules.label_problem(invalid) or "it is not a valid label"
                form.add_error("label", f"{invalid}: {problem[:1].upper()}{problem[1:]}.")
    if form.errors:
        return _labels_card(request, label_form=form, invalid=True)
    return _labels_card(request)


@login_required
@require_POST
@parameter_page
def label_remove(request: HtmxHttpRequest) -> HttpResponse:
    form = LabelForm(request.POST)
    if not form.is_valid():
        return _labels_card(request, label_form=form, invalid=True)
    services.parameter_unlabel(
        principal=principal_of(request),
        name=name_of(request),
        version=form.cleaned_data["version"],
        labels=[form.cleaned_data["label"]],
    )
    return _labels_card(request)
