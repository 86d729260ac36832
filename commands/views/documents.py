"""Documents: the list, one document's page (its parameters, steps, content in JSON or YAML,
versions), two versions compared, and which version is the default."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from access.authorization import Principal, authorize, is_allowed, principal_of
from bosun.lib.diff import diff_lines
from commands import selectors
from commands.documents.content import content_render
from commands.documents.schema import document_spec
from commands.forms import DocumentFilterForm
from commands.models import Document, DocumentFormat, DocumentVersion
from commands.querysets import LIST_DOCUMENTS
from commands.scope import document_arn
from commands.services.documents import document_default_version_set
from commands.services.send import SEND
from commands.views.common import (
    PAGE_SIZE,
    HtmxHttpRequest,
    allowed,
    commands_page,
    wants_partial,
)

LIST_TEMPLATE = "commands/document_list.html"
DETAIL_TEMPLATE = "commands/document_detail.html"
DIFF_TEMPLATE = "commands/document_diff.html"
GET_DOCUMENT = "ssm:GetDocument"
LIST_VERSIONS = "ssm:ListDocumentVersions"
CREATE = "ssm:CreateDocument"
UPDATE = "ssm:UpdateDocument"
DELETE = "ssm:DeleteDocument"
SET_DEFAULT = "ssm:UpdateDocumentDefaultVersion"
FORMATS = tuple(DocumentFormat.values)


def may_create(principal: Principal) -> bool:
    return is_allowed(principal, CREATE, document_arn("*"))


@login_required
@require_GET
@vary_on_headers("HX-Request")
@commands_page
def document_list(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    filters = DocumentFilterForm(request.GET or None)
    data = filters.cleaned_data if filters.is_valid() else {}
    documents = selectors.documents_list(
        principal=principal,
        filters=selectors.DocumentFilter(
            search=data.get("q", "").strip(), owner=data.get("owner", "")
        ),
    ).select_related("created_by")
    if not Document.objects.visible_to(principal).exists():
        # Whom policy lets list no document at all gets the (audited) 403.
        authorize(principal, LIST_DOCUMENTS, document_arn("*"))
    page = Paginator(documents, PAGE_SIZE).get_page(request.GET.get("page"))
    defaults = selectors.document_default_versions(list(page.object_list))
    context = {
        "filters": filters,
        "page": page,
        "rows": [(document, defaults.get(document.pk)) for document in page.object_list],
        "can_create": may_create(principal),
    }
    template = f"{LIST_TEMPLATE}#results" if wants_partial(request) else LIST_TEMPLATE
    return render(request, template, context)


def rendered_content(version: DocumentVersion, content_format: str) -> str:
    """The content as written in its own format; converted (from the parsed body) otherwise."""
    if content_format == version.content_format:
        return version.content
    return content_render(version.body, content_format)


def _format(request: HtmxHttpRequest, version: DocumentVersion) -> str:
    wanted = request.GET.get("format", "")
    return wanted if wanted in FORMATS else version.content_format


def _versions(principal: Principal, document: Document) -> list[DocumentVersion] | None:
    if not is_allowed(principal, LIST_VERSIONS, document_arn(document.name)):
        return None
    return list(selectors.document_versions(principal=principal, name=document.name))


@login_required
@require_GET
@vary_on_headers("HX-Request")
@commands_page
def document_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    principal = principal_of(request)
    version = selectors.document_version_get(
        principal=principal, name=name, version=request.GET.get("version") or None
    )
    document = version.document
    content_format = _format(request, version)
    context: dict[str, Any] = {
        "document": document,
        "version": version,
        "spec": document_spec(version.body),
        "content_format": content_format,
        "content": rendered_content(version, content_format),
        "formats": FORMATS,
    }
    if wants_partial(request):
        return render(request, f"{DETAIL_TEMPLATE}#content", context)
    arn = document_arn(document.name)
    versions = _versions(principal, document)
    own = not document.is_builtin
    can = allowed(
        principal,
        {
            "can_send": (SEND, arn),
            "can_edit": (UPDATE, arn),
            "can_delete": (DELETE, arn),
            "can_set_default": (SET_DEFAULT, arn),
        },
    )
    context |= {
        "arn": arn,
        "versions": versions,
        "version_numbers": [v.version for v in versions or []],
        **{flag: value and (own or flag == "can_send") for flag, value in can.items()},
    }
    return render(request, DETAIL_TEMPLATE, context)


@login_required
@require_POST
@commands_page
def document_default(request: HtmxHttpRequest, name: str) -> HttpResponse:
    version = document_default_version_set(
        principal=principal_of(request),
        name=name,
        document_version=request.POST.get("version", ""),
    )
    messages.success(
        request, f"Version {version.version} is now the default version of {version.document}."
    )
    return redirect("commands:document", name=version.document.name)


# --- Two versions compared -------------------------------------------------------------------


@login_required
@require_GET
@commands_page
def document_diff(request: HtmxHttpRequest, name: str) -> HttpResponse:
    principal = principal_of(request)
    newest = selectors.document_version_get(
        principal=principal, name=name, version=request.GET.get("b") or selectors.LATEST
    )
    document = newest.document
    previous = str(max(newest.version - 1, 1))
    older = selectors.document_version_get(
        principal=principal, name=document.name, version=request.GET.get("a") or previous
    )
    wanted = request.GET.get("format", "")
    content_format = wanted if wanted in FORMATS else newest.content_format
    versions = _versions(principal, document) or [older, newest]
    context = {
        "document": document,
        "a": older,
        "b": newest,
        "content_format": content_format,
        "formats": FORMATS,
        "version_numbers": sorted({v.version for v in versions}, reverse=True),
        "lines": diff_lines(
            rendered_content(older, content_format),
            rendered_content(newest, content_format),
            old_name=f"version {older.version}",
            new_name=f"version {newest.version}",
        ),
        "back": reverse("commands:document", args=[document.name]),
    }
    return render(request, DIFF_TEMPLATE, context)
