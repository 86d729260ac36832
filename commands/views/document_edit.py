"""Create a document, write its next version, delete it (or one version). Built-in
documents are read-only: their pages say so and offer none of this."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from access.authorization import Principal, authorize, principal_of
from access.views.common import confirm
from bosun.lib.errors import AccessDenied, BosunError
from commands import selectors
from commands.exceptions import (
    DocumentAlreadyExists,
    DuplicateDocumentContent,
    DuplicateDocumentVersionName,
)
from commands.forms import DOCUMENT_TEMPLATE, DocumentForm
from commands.models import Document, DocumentVersion
from commands.scope import document_arn
from commands.services.documents import document_create, document_delete, document_update
from commands.views.common import HtmxHttpRequest, commands_page, render_form
from commands.views.documents import CREATE, DELETE, UPDATE, may_create

FORM_TEMPLATE = "commands/document_form.html"
EXCERPT_BEFORE, EXCERPT_AFTER = 3, 2
FORM_FIELDS = ("name", "content_format", "version_name")


def excerpt(content: str, line: int | None) -> list[tuple[int, str, bool]]:
    """The lines around `line` (1-based), numbered, the line itself marked."""
    lines = content.splitlines()
    if not line or not 1 <= line <= max(len(lines), 1):
        return []
    first = max(1, line - EXCERPT_BEFORE)
    last = min(len(lines), line + EXCERPT_AFTER)
    return [(number, lines[number - 1], number == line) for number in range(first, last + 1)]


def place_error(form: DocumentForm, error: BosunError) -> None:
    """Beside its field: the name, the version name, the format, or the content (with the
    line, when the document's text could be mapped); anything else above the form."""
    where = getattr(error, "field", "") or ""
    if isinstance(error, DocumentAlreadyExists | AccessDenied):
        where = "name"
    elif isinstance(error, DuplicateDocumentVersionName):
        where = "version_name"
    elif isinstance(error, DuplicateDocumentContent):
        where = "content"
    if where in FORM_FIELDS:
        form.add_error(where if where in form.fields else None, error.message)
    elif where:
        # "content", or a field of the document itself (mainSteps[0].inputs.runCommand).
        form.add_error("content", error.message)
        form.error_line = getattr(error, "line", None)
    else:
        form.add_error(None, error.message)


def _editor(
    request: HtmxHttpRequest, form: DocumentForm, *, document: Document | None = None
) -> HttpResponse:
    content = str(form["content"].value() or "")
    context: dict[str, Any] = {
        "form": form,
        "document": document,
        "error_line": form.error_line,
        "excerpt": excerpt(content, form.error_line),
        "cancel_url": reverse("commands:document", args=[document.name])
        if document
        else reverse("commands:documents"),
    }
    return render_form(request, FORM_TEMPLATE, context, invalid=bool(form.errors))


@login_required
@require_http_methods(["GET", "POST"])
@commands_page
def document_create_page(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    if not may_create(principal):
        authorize(principal, CREATE, document_arn("*"))
    if request.method == "GET":
        return _editor(request, DocumentForm(initial={"content": DOCUMENT_TEMPLATE}))
    form = DocumentForm(request.POST)
    if not form.is_valid():
        return _editor(request, form)
    data = form.cleaned_data
    try:
        version = document_create(
            principal=principal,
            name=data["name"].strip(),
            content=data["content"],
            content_format=data["content_format"],
            version_name=data["version_name"].strip(),
        )
    except BosunError as error:
        place_error(form, error)
        return _editor(request, form)
    messages.success(request, f"Document {version.document.name} created (version 1).")
    return redirect("commands:document", name=version.document.name)


def _own_latest(principal: Principal, name: str, action: str) -> DocumentVersion:
    """The latest version of a document, once `action` on it is allowed (audited)."""
    return selectors.document_version_get(
        principal=principal, name=name, version=selectors.LATEST, action=action
    )


def _read_only(request: HtmxHttpRequest, document: Document) -> HttpResponse:
    messages.info(
        request,
        f"{document.name} ships with Bosun and is read-only. To change it, create a document "
        "from its content.",
    )
    return redirect("commands:document", name=document.name)


@login_required
@require_http_methods(["GET", "POST"])
@commands_page
def document_edit_page(request: HtmxHttpRequest, name: str) -> HttpResponse:
    principal = principal_of(request)
    latest = _own_latest(principal, name, UPDATE)
    document = latest.document
    if document.is_builtin:
        return _read_only(request, document)
    if request.method == "GET":
        initial = {
            "content": latest.content,
            "content_format": latest.content_format,
            "base_version": str(latest.version),
        }
        return _editor(request, DocumentForm(initial=initial, editing=True), document=document)
    form = DocumentForm(request.POST, editing=True)
    if not form.is_valid():
        return _editor(request, form, document=document)
    data = form.cleaned_data
    try:
        version = document_update(
            principal=principal,
            name=document.name,
            content=data["content"],
            content_format=data["content_format"],
            document_version=data["base_version"] or selectors.LATEST,
            version_name=data["version_name"].strip(),
        )
    except BosunError as error:
        place_error(form, error)
        return _editor(request, form, document=document)
    default = document.default_version
    messages.success(
        request,
        f"Saved as version {version.version}. Version {default} stays the default until you "
        "set another one below.",
    )
    return redirect(
        reverse("commands:document", args=[document.name]) + f"?version={version.version}"
    )


@login_required
@require_http_methods(["GET", "POST"])
@commands_page
def document_delete_page(request: HtmxHttpRequest, name: str) -> HttpResponse:
    principal = principal_of(request)
    latest = _own_latest(principal, name, DELETE)
    document = latest.document
    if document.is_builtin:
        return _read_only(request, document)
    data = request.POST if request.method == "POST" else request.GET
    version = data.get("version", "")
    back = reverse("commands:document", args=[document.name])
    if request.method == "GET":
        authorize(principal, DELETE, document_arn(document.name))
        if version:
            chosen = selectors.document_version_get(
                principal=principal, name=document.name, version=version
            )
            return confirm(
                request,
                title=f"Delete version {chosen.version} of {document.name}?",
                message="This version is deleted at once and cannot be restored. Commands "
                "sent with it keep their record. The default version cannot be deleted.",
                button=f"Delete version {chosen.version}",
                cancel_url=back,
                fields={"version": str(chosen.version)},
            )
        return confirm(
            request,
            title=f"Delete document {document.name}?",
            message=f"The document and all its {document.latest_version} version(s) are "
            "deleted at once and cannot be restored. Commands sent with it keep their "
            "record; State Manager associations and scripts that use it stop finding it.",
            button="Delete document",
            cancel_url=back,
        )
    document_delete(principal=principal, name=document.name, document_version=version)
    if version:
        messages.success(request, f"Version {version} of {document.name} deleted.")
        return redirect(back)
    messages.success(request, f"Document {document.name} deleted.")
    return redirect("commands:documents")
