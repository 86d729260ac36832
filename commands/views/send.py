"""Run a command: a document, its parameters (fields made from the document), the targets
with a live preview of the nodes they reach, rate control; then a review, then the send.

Nothing is kept between the steps but the form itself: the review carries every value in
hidden fields, so going back, or a refusal at the send, loses nothing that was typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from access.authorization import Principal, authorize, is_allowed, principal_of
from bosun.lib.errors import AccessDenied, BosunError
from commands import selectors
from commands.documents.builtin import canonical_name
from commands.documents.schema import DocumentSpec, document_spec
from commands.exceptions import CommandsError
from commands.forms import (
    TARGET_FIELDS,
    TARGET_INSTANCES,
    ParametersForm,
    SendForm,
    targets_initial,
    targets_of,
)
from commands.models import Document, DocumentVersion
from commands.scope import document_arn
from commands.services.send import SEND, command_plan, command_send
from commands.views.common import HtmxHttpRequest, commands_page, render_form, wants_partial
from fleet.exceptions import FleetError
from fleet.models import ManagedNode, ResourceGroup
from fleet.selectors import nodes_visible_to
from fleet.targets import Resolution, targets_resolve
from parameters.exceptions import ParameterError

SEND_TEMPLATE = "commands/send.html"
REVIEW_TEMPLATE = "commands/send_review.html"
PREVIEW_NODES = 10
PICKER_SIZE = 50
LIST_VERSIONS = "ssm:ListDocumentVersions"
FORM_FIELDS = tuple(SendForm.base_fields)
STEP_EDIT, STEP_REVIEW, STEP_SEND = "edit", "review", "send"


@dataclass
class Setup:
    """The send form and what the chosen document makes of it."""

    form: SendForm
    parameters: ParametersForm | None = None
    version: DocumentVersion | None = None
    spec: DocumentSpec | None = None
    versions: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    document_error: str = ""  # why the document of a first view cannot be used
    # Another document (or version) was chosen than the parameter fields were made for:
    # the form shows the new fields, nothing is checked yet.
    reloaded: bool = False

    def is_valid(self) -> bool:
        form_ok = self.form.is_valid()
        parameters_ok = self.parameters is not None and self.parameters.is_valid()
        if self.parameters is None and "document" not in self.form.errors:
            self.form.add_error("document", "Choose a document to run.")
        return form_ok and parameters_ok

    def chosen(self) -> tuple[ParametersForm, DocumentSpec, DocumentVersion]:
        """The document's parts, once it was found (a valid setup always has them)."""
        if self.parameters is None or self.spec is None or self.version is None:
            raise ValueError("no document was chosen")
        return self.parameters, self.spec, self.version

    @property
    def invalid(self) -> bool:
        return bool(self.form.errors or (self.parameters is not None and self.parameters.errors))


def sendable_documents(principal: Principal) -> list[str]:
    return list(
        Document.objects.visible_to(principal, SEND).order_by("name").values_list("name", flat=True)
    )


def _versions(principal: Principal, version: DocumentVersion) -> list[tuple[str, str]]:
    document = version.document
    choices = [("", f"Default (version {document.default_version})")]
    if not is_allowed(principal, LIST_VERSIONS, document_arn(document.name)):
        return choices
    rows = selectors.document_versions(principal=principal, name=document.name)
    for row in rows.values_list("version", "version_name"):
        number, name = row
        label = f"Version {number}" + (f" ({name})" if name else "")
        if number == document.latest_version:
            label += " · latest"
        choices.append((str(number), label))
    return choices


def _setup(
    principal: Principal,
    documents: list[str],
    *,
    data: QueryDict | None = None,
    initial: dict[str, Any] | None = None,
    given: dict[str, Any] | None = None,
) -> Setup:
    """The forms, bound to `data` (a post) or started from `initial` (a first view, a re-run)."""
    form = SendForm(data, initial=initial, documents=documents)
    setup = Setup(form=form)
    source = data if data is not None else (initial or {})
    name = canonical_name(str(source.get("document") or ""))
    if not name:
        return setup
    try:
        version = selectors.document_version_get(
            principal=principal,
            name=name,
            version=str(source.get("document_version") or "") or None,
            action=SEND,
        )
    except (CommandsError, AccessDenied) as error:
        if data is None:
            setup.document_error = error.message
        else:
            form.add_error(_document_field(error), error.message)
        return setup
    setup.version, setup.spec = version, document_spec(version.body)
    setup.versions = _versions(principal, version)
    if data is not None and data.get("loaded_document") != loaded_key(data):
        setup.reloaded = True
        data = None
    setup.parameters = ParametersForm(data, specs=setup.spec.parameters, given=given)
    return setup


def loaded_key(source: Any) -> str:
    """Which document and version the parameter fields on the page were made for."""
    name = canonical_name(str(source.get("document") or ""))
    return f"{name}:{source.get('document_version') or ''}"


def _document_field(error: BosunError) -> str:
    return "document_version" if getattr(error, "field", "") == "document_version" else "document"


def _initial(request: HtmxHttpRequest, principal: Principal) -> tuple[dict[str, Any], Any]:
    """Where a new form starts: an earlier command (?rerun=ID), or the query string (a link
    such as ?document=NAME, or the document picked before a reload)."""
    rerun = request.GET.get("rerun")
    if rerun:
        command = selectors.command_get(principal=principal, command_id=rerun)
        initial = {
            "document": command.document_name,
            "document_version": command.document_version,
            "max_concurrency": command.max_concurrency,
            "max_errors": command.max_errors,
            "timeout_seconds": command.timeout_seconds,
            "comment": command.comment,
            **targets_initial(command.targets),
        }
        return initial, command.parameters
    initial = {
        name: request.GET.getlist(name) if name == "instance_ids" else request.GET.get(name)
        for name in FORM_FIELDS
        if name in request.GET
    }
    if "document" in initial:
        initial["document"] = canonical_name(initial["document"])
    return initial, None


def _form_targets(setup: Setup, source: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The targets the form holds so far, for the preview (None while it holds none)."""
    if setup.form.is_bound:
        setup.form.is_valid()
        return setup.form.targets or None
    try:
        return targets_of({**source, "target_mode": source.get("target_mode") or TARGET_INSTANCES})
    except ValidationError:
        return None  # an incomplete start shows no preview yet


# --- Targets: the node picker and the live preview -------------------------------------------


def node_picker(principal: Principal, selected: list[str], query: str = "") -> dict[str, Any]:
    """The nodes to tick: those chosen already, then the first matches of `query` among the
    nodes policy lets the principal send commands to."""
    nodes = nodes_visible_to(principal, SEND).active()
    chosen = {node.pk: node for node in nodes.filter(pk__in=selected)}
    others = nodes.exclude(pk__in=selected)
    if query:
        others = others.filter(
            Q(name__icontains=query) | Q(id__icontains=query) | Q(hostname__icontains=query)
        )
    others = others.order_by("name", "id")
    return {
        "picked": [(node_id, chosen.get(node_id)) for node_id in selected],
        "offered": list(others[:PICKER_SIZE]),
        "offered_more": max(0, others.count() - PICKER_SIZE),
        "node_query": query,
    }


@dataclass
class Preview:
    resolution: Resolution | None = None
    error: str = ""

    @property
    def nodes(self) -> list[ManagedNode]:
        return list(self.resolution.nodes[:PREVIEW_NODES]) if self.resolution else []

    @property
    def more(self) -> int:
        return max(0, self.resolution.total - PREVIEW_NODES) if self.resolution else 0


def preview_of(principal: Principal, targets: list[dict[str, Any]] | None) -> Preview | None:
    if not targets:
        return None
    try:
        return Preview(targets_resolve(principal=principal, targets=targets, action=SEND))
    except (FleetError, AccessDenied) as error:
        return Preview(error=error.message)


@login_required
@require_GET
@commands_page
def send_preview(request: HtmxHttpRequest) -> HttpResponse:
    """Which nodes the targets being chosen reach: counts, the first ones, and named ids that
    are left out (refused by policy, unknown, deregistered)."""
    principal = principal_of(request)
    data: dict[str, Any] = {
        "target_mode": request.GET.get("target_mode", TARGET_INSTANCES),
        "instance_ids": [i for i in request.GET.getlist("instance_ids") if i.strip()],
        "target_tags": request.GET.get("target_tags", ""),
        "resource_group": request.GET.get("resource_group", ""),
    }
    entered = data["instance_ids"] or data["target_tags"].strip() or data["resource_group"]
    try:
        preview = preview_of(principal, targets_of(data))
    except ValidationError as error:
        # Nothing chosen yet shows the hint; a choice that cannot work says why.
        preview = Preview(error=" ".join(error.messages)) if entered else None
    return render(request, f"{SEND_TEMPLATE}#preview", {"preview": preview})


@login_required
@require_GET
@commands_page
def send_nodes(request: HtmxHttpRequest) -> HttpResponse:
    """The node picker again, for a search (the ticked nodes stay ticked)."""
    principal = principal_of(request)
    selected = [i.strip() for i in request.GET.getlist("instance_ids") if i.strip()]
    context = node_picker(principal, list(dict.fromkeys(selected)), request.GET.get("node_q", ""))
    return render(request, f"{SEND_TEMPLATE}#node_picker", context)


# --- The page ---------------------------------------------------------------------------------


def _editor(request: HtmxHttpRequest, principal: Principal, setup: Setup) -> HttpResponse:
    form = setup.form
    source: dict[str, Any] = {
        name: form[name].value() for name in ("target_mode", "instance_ids", "resource_group")
    } | {"target_tags": form["target_tags"].value() or ""}
    selected = list(source.get("instance_ids") or [])
    version = str(form["document_version"].value() or "")
    if version not in {value for value, _ in setup.versions}:
        version = ""
    document = setup.version.document.name if setup.version else ""
    context: dict[str, Any] = {
        "setup": setup,
        "form": form,
        "parameters": setup.parameters,
        "target_mode": source.get("target_mode") or TARGET_INSTANCES,
        "target_fields": TARGET_FIELDS,
        "document_name": document,
        "selected_version": version,
        "loaded": f"{document}:{version}",
        "groups": list(ResourceGroup.objects.visible_to(principal).order_by("name")),
        "preview": preview_of(principal, _form_targets(setup, source)),
        **node_picker(principal, selected),
    }
    if wants_partial(request) and request.method == "GET":
        return render(request, f"{SEND_TEMPLATE}#document_part", context)
    return render_form(request, SEND_TEMPLATE, context, invalid=setup.invalid)


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
@commands_page
def command_send_page(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    documents = sendable_documents(principal)
    if not documents:
        # Nothing may be sent: the (audited) 403.
        authorize(principal, SEND, document_arn("*"))
    if request.method == "GET":
        initial, given = _initial(request, principal)
        setup = _setup(principal, documents, initial=initial, given=given)
        return _editor(request, principal, setup)
    setup = _setup(principal, documents, data=request.POST)
    step = request.POST.get("step", STEP_REVIEW)
    if step == STEP_EDIT or setup.reloaded or not setup.is_valid():
        return _editor(request, principal, setup)
    preview = _checked(principal, setup)
    if preview is None:
        return _editor(request, principal, setup)
    if step != STEP_SEND:
        return _review(request, setup, preview)
    return _send(request, principal, setup)


def _checked(principal: Principal, setup: Setup) -> Preview | None:
    """The send's dry run (command_plan: every check, nothing written). None, with the
    errors beside their fields, when it fails; else what the targets reach, for the review."""
    try:
        plan = command_plan(principal=principal, **_send_arguments(setup))
    except BosunError as error:
        place_error(setup, error)
        return None
    return Preview(plan.resolution)


def _send_arguments(setup: Setup) -> dict[str, Any]:
    parameters, _, version = setup.chosen()
    data = setup.form.cleaned_data
    return {
        "document_name": version.document.name,
        "document_version": str(version.version),
        "parameters": parameters.values(),
        "targets": setup.form.targets,
        "max_concurrency": data["max_concurrency"],
        "max_errors": data["max_errors"],
        "timeout_seconds": data["timeout_seconds"],
        "comment": data["comment"],
    }


def _carried(data: QueryDict) -> list[tuple[str, str]]:
    """Every posted value, for hidden fields: the review sends them back unchanged."""
    return [
        (name, value)
        for name, values in data.lists()
        if name not in ("csrfmiddlewaretoken", "step")
        for value in values
    ]


def _review(request: HtmxHttpRequest, setup: Setup, preview: Preview) -> HttpResponse:
    parameters, spec, version = setup.chosen()
    given = parameters.values()
    parameter_rows = [(name, given.get(name), item) for name, item in spec.parameters.items()]
    context = {
        "setup": setup,
        "form": setup.form,
        "data": setup.form.cleaned_data,
        "version": version,
        "parameter_rows": parameter_rows,
        "preview": preview,
        "carried": _carried(request.POST),
    }
    return render(request, REVIEW_TEMPLATE, context)


def _send(request: HtmxHttpRequest, principal: Principal, setup: Setup) -> HttpResponse:
    try:
        command = command_send(principal=principal, **_send_arguments(setup))
    except BosunError as error:
        place_error(setup, error)
        return _editor(request, principal, setup)
    nodes = f"{command.target_count} node{'s' if command.target_count != 1 else ''}"
    messages.success(request, f"Command sent to {nodes}.")
    return redirect("commands:detail", command_id=command.command_id)


FORM_ERROR_FIELDS = (
    "document",
    "document_version",
    "max_concurrency",
    "max_errors",
    "timeout_seconds",
    "comment",
)


def place_error(setup: Setup, error: BosunError) -> None:
    """Show a refusal beside the field it is about: the services name it (`.field`), a
    fleet error is about the targets, a parameter store error about a parameter's value."""
    form, parameters = setup.form, setup.parameters
    where = getattr(error, "field", "") or ""
    message = error.message
    if isinstance(error, AccessDenied):
        if "document/" in message:
            where = "document"
        elif "parameter/" in message:
            where = "parameters"
        elif "group/" in message or "managed-instance/" in message:
            where = "targets"
    if isinstance(error, FleetError):
        where = "targets"
    if isinstance(error, ParameterError):
        where = "parameters"
    name = where.removeprefix("parameters.")
    if where.startswith("parameters.") and parameters is not None and name in parameters.fields:
        parameters.add_error(name, message)
    elif where == "parameters" and parameters is not None:
        parameters.add_error(None, message)
    elif where == "targets":
        form.add_error(form.target_field, message)
    elif where in FORM_ERROR_FIELDS:
        form.add_error(where, message)
    else:
        form.add_error(None, message)
