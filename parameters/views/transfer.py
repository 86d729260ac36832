"""Export a path as a JSON or .env download; import one, with a result for every entry."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from access.authorization import Principal, principal_of
from bosun.lib.errors import AccessDenied
from parameters import rules, selectors, services
from parameters import transfer as transfer_service
from parameters.exceptions import ParameterError
from parameters.forms import ExportForm, ImportForm
from parameters.models import ParameterType
from parameters.views.common import (
    HtmxHttpRequest,
    list_url,
    never_stored,
    parameter_page,
    render_form,
    require_some,
)

EXPORT_TEMPLATE = "parameters/export.html"
IMPORT_TEMPLATE = "parameters/import.html"
CONTENT_TYPES = {"json": "application/json", "env": "text/plain"}
SECURE_PREVIEW = 20


def _path_of(request: HtmxHttpRequest) -> str:
    try:
        return rules.parse_path(request.GET.get("path") or "/")
    except ParameterError:
        return "/"


def _secure_below(principal: Principal, path: str) -> tuple[list[str], bool]:
    """Some SecureStrings below `path` (names only), to say beforehand what a plain export
    leaves out; the second item says whether there are more."""
    page = selectors.parameters_describe(
        principal=principal,
        parameter_filters=[
            {"Key": "Path", "Option": "Recursive", "Values": [path]},
            {"Key": "Type", "Values": [ParameterType.SECURE_STRING]},
        ],
        max_results=SECURE_PREVIEW,
    )
    return [item.parameter.name for item in page.items], bool(page.next_token)


@sensitive_variables("export")
def _download(export: transfer_service.Export, path: str, fmt: str) -> HttpResponse:
    stem = path.strip("/").replace("/", "-") or "parameters"
    filename = f"{stem}.json" if fmt == "json" else f"{stem}.env"
    response = HttpResponse(export.content, content_type=f"{CONTENT_TYPES[fmt]}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Bosun-Exported"] = str(export.exported)
    response["X-Bosun-Skipped"] = str(len(export.skipped))
    # With decryption the file holds secrets: no browser or proxy may keep a copy.
    return never_stored(response)


@login_required
@require_http_methods(["GET", "POST"])
@parameter_page
@sensitive_variables("export")
def parameters_export(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    require_some(principal, selectors.GET_BY_PATH)
    if request.method == "GET":
        path = _path_of(request)
        form = ExportForm(initial={"path": path, "fmt": "json"})
        return _export_page(request, form, path)
    form = ExportForm(request.POST)
    if not form.is_valid():
        return _export_page(request, form, _path_of(request), invalid=True)
    data = form.cleaned_data
    try:
        export = transfer_service.parameters_export(
            principal=principal,
            path=data["path"],
            fmt=data["fmt"],
            with_decryption=data["with_decryption"],
        )
    except AccessDenied:
        raise
    except ParameterError as error:
        form.add_error("path" if getattr(error, "field", "") == "path" else None, error.message)
        return _export_page(request, form, data["path"], invalid=True)
    if export.skipped and data["with_decryption"] and not data["skipped_ok"]:
        # Asked for every value but refused some: say which before handing out a file
        # that lacks them.
        return _export_page(request, form, data["path"], skipped=export.skipped)
    return _download(export, data["path"], data["fmt"])


def _export_page(
    request: HtmxHttpRequest,
    form: ExportForm,
    path: str,
    *,
    invalid: bool = False,
    skipped: list[str] | None = None,
) -> HttpResponse:
    secure, more = _secure_below(principal_of(request), path)
    context: dict[str, Any] = {
        "form": form,
        "path": path,
        "secure_names": secure,
        "secure_more": more,
        "skipped": skipped or [],
        "back_url": list_url(path),
    }
    return render_form(request, EXPORT_TEMPLATE, context, invalid=invalid)


@login_required
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("content")
@parameter_page
@sensitive_variables("data", "form")
def parameters_import(request: HtmxHttpRequest) -> HttpResponse:
    principal = principal_of(request)
    path = _path_of(request)
    require_some(principal, services.PUT, path)
    if request.method == "GET":
        form = ImportForm(initial={"path": path})
        return _import_page(request, form, path)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _import_page(request, form, path, invalid=True)
    data = form.cleaned_data
    try:
        result = transfer_service.parameters_import(
            principal=principal,
            path=data["path"],
            content=data["text"],
            fmt=data["fmt"],
            parameter_type=data["type"],
            overwrite=data["overwrite"],
            key_id=data["key_id"] or None,
        )
    except AccessDenied:
        raise
    except ParameterError as error:
        field = getattr(error, "field", "")
        form.add_error(field if field in ("path", "content") else None, error.message)
        return _import_page(request, form, data["path"], invalid=True)
    # The pasted content may hold secrets: the result page never echoes it.
    return _import_page(request, ImportForm(initial=_kept(data)), data["path"], result=result)


def _kept(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in ("path", "type", "key_id", "overwrite")}


def _import_page(
    request: HtmxHttpRequest,
    form: ImportForm,
    path: str,
    *,
    invalid: bool = False,
    result: transfer_service.ImportResult | None = None,
) -> HttpResponse:
    if form.is_bound and form.data.get("type") == ParameterType.SECURE_STRING:
        form.data = {**dict(form.data.items()), "content": ""}
    context = {"form": form, "path": path, "result": result, "back_url": list_url(path)}
    return never_stored(render_form(request, IMPORT_TEMPLATE, context, invalid=invalid))
