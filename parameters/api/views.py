"""Parameter Store API endpoints: adapt JSON to the services and selectors every face uses.

Parameter names hold slashes, so they travel in the query string or the JSON body, never in
the path. Values travel only in bodies: a secret never lands in a URL or an access log.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from bosun.lib.api import NO_STORE, ApiErrorSerializer, FirstRendererNegotiation, body, query
from parameters import selectors, services, transfer
from parameters.api import serializers as shapes
from parameters.api.common import TAG, ParameterAPIView

ERRORS: dict[int | tuple[int, str], Any] = {
    400: ApiErrorSerializer,
    403: ApiErrorSerializer,
    404: ApiErrorSerializer,
}


def _responses(ok: Any) -> dict[int | tuple[int, str], Any]:
    return {200: ok, **ERRORS}


def _equals(key: str, values: list[str] | None) -> list[dict[str, Any]]:
    return [{"Key": key, "Option": "Equals", "Values": list(values)}] if values else []


def _describe_filters(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The query string as AWS's ParameterFilters, after any given as JSON."""
    filters: list[dict[str, Any]] = list(data.get("parameter_filters", []))
    if "name_contains" in data:
        filters.append({"Key": "Name", "Option": "Contains", "Values": [data["name_contains"]]})
    if "name_begins_with" in data:
        filters.append(
            {"Key": "Name", "Option": "BeginsWith", "Values": [data["name_begins_with"]]}
        )
    if "path" in data:
        option = "Recursive" if data["recursive"] else "OneLevel"
        filters.append({"Key": "Path", "Option": option, "Values": [data["path"]]})
    filters += _equals("Type", data.get("type"))
    filters += _equals("Tier", data.get("tier"))
    filters += _equals("DataType", data.get("data_type"))
    filters += _equals("KeyId", data.get("key_id"))
    filters += _equals("Label", data.get("label"))
    tags: dict[str, list[str]] = {}
    for key, value in data.get("tag", []):
        tags.setdefault(key, [])
        if value is not None:
            tags[key].append(value)
    filters += [{"Key": f"tag:{key}", "Values": values} for key, values in tags.items()]
    return filters


def _path_filters(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *_equals("Type", data.get("type")),
        *_equals("KeyId", data.get("key_id")),
        *_equals("Label", data.get("label")),
    ]


# --- Parameters -----------------------------------------------------------------------------


class ParameterListView(ParameterAPIView):
    """GET describes (metadata, never values); POST writes; DELETE ?name= deletes one."""

    @extend_schema(
        tags=[TAG],
        operation_id="parameters_describe",
        parameters=[shapes.DescribeQuery],
        responses=_responses(shapes.DescribeResponse),
    )
    def get(self, request: Request) -> Response:
        """The parameters the caller may describe, ≤ 50 a page, in name order."""
        data = query(shapes.DescribeQuery, request)
        page = selectors.parameters_describe(
            principal=self.principal(),
            parameter_filters=_describe_filters(data),
            max_results=data.get("max_results"),
            next_token=data.get("next_token"),
        )
        return Response(
            shapes.DescribeResponse({"results": page.items, "next_token": page.next_token}).data
        )

    @extend_schema(
        tags=[TAG],
        operation_id="parameters_put",
        request=shapes.PutInput,
        responses={201: shapes.PutResponse, 200: shapes.PutResponse, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        """Creates a parameter (201) or, with `overwrite`, writes its next version (200)."""
        data = body(shapes.PutInput, request)
        if "type" in data:
            data["parameter_type"] = data.pop("type")
        # Settings left out stay out: the service keeps the current version's for them.
        result = services.parameter_put(principal=self.principal(), **data)
        return Response(
            shapes.PutResponse(result).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(
        tags=[TAG],
        operation_id="parameters_delete",
        parameters=[shapes.NameQuery],
        responses=_responses(shapes.ParameterDeleteResponse),
    )
    def delete(self, request: Request) -> Response:
        name = query(shapes.NameQuery, request)["name"]
        services.parameter_delete(principal=self.principal(), name=name)
        return Response(
            shapes.ParameterDeleteResponse({"deleted": [name], "invalid_parameters": []}).data
        )


class ParameterDeleteManyView(ParameterAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="parameters_delete_many",
        request=shapes.DeleteManyInput,
        responses=_responses(shapes.ParameterDeleteResponse),
    )
    def post(self, request: Request) -> Response:
        """Deletes up to 10 parameters; unknown names come back in `invalid_parameters`."""
        names = body(shapes.DeleteManyInput, request)["names"]
        result = services.parameters_delete(principal=self.principal(), names=names)
        return Response(
            shapes.ParameterDeleteResponse(
                {"deleted": result.deleted, "invalid_parameters": result.invalid}
            ).data
        )


# --- Values ---------------------------------------------------------------------------------


class ParameterValueView(ParameterAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="parameters_value",
        parameters=[shapes.ValueQuery],
        responses=_responses(shapes.ParameterValueSerializer),
    )
    def get(self, request: Request) -> Response:
        """One value; a SecureString's is its ciphertext unless `decrypt` (audited)."""
        data = query(shapes.ValueQuery, request)
        value = selectors.parameter_get(
            principal=self.principal(), name=data["name"], with_decryption=data["decrypt"]
        )
        return Response(
            shapes.ParameterValueSerializer(value).data,
            headers=NO_STORE if data["decrypt"] else None,
        )


class ParameterValuesView(ParameterAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="parameters_values",
        parameters=[shapes.ValuesQuery],
        responses=_responses(shapes.ValuesResponse),
    )
    def get(self, request: Request) -> Response:
        """Up to 10 values; names not found come back in `invalid_parameters`."""
        data = query(shapes.ValuesQuery, request)
        found, invalid = selectors.parameters_get(
            principal=self.principal(), names=data["name"], with_decryption=data["decrypt"]
        )
        return Response(
            shapes.ValuesResponse({"parameters": found, "invalid_parameters": invalid}).data,
            headers=NO_STORE if data["decrypt"] else None,
        )


class ParameterPathView(ParameterAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="parameters_by_path",
        parameters=[shapes.PathQuery],
        responses=_responses(shapes.PathResponse),
    )
    def get(self, request: Request) -> Response:
        """The readable values below `path`, ≤ 10 a page; a page may hold fewer than
        `max_results` when some were not readable, so follow `next_token` until it is null."""
        data = query(shapes.PathQuery, request)
        page = selectors.parameters_by_path(
            principal=self.principal(),
            path=data["path"],
            recursive=data["recursive"],
            filters=_path_filters(data),
            with_decryption=data["decrypt"],
            max_results=data.get("max_results"),
            next_token=data.get("next_token"),
        )
        return Response(
            shapes.PathResponse({"parameters": page.items, "next_token": page.next_token}).data,
            headers=NO_STORE if data["decrypt"] else None,
        )


class ParameterHistoryView(ParameterAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="parameters_history",
        parameters=[shapes.HistoryQuery],
        responses=_responses(shapes.HistoryResponse),
    )
    def get(self, request: Request) -> Response:
        """Every kept version, oldest first, ≤ 50 a page, with its labels and writer."""
        data = query(shapes.HistoryQuery, request)
        page = selectors.parameter_history(
            principal=self.principal(),
            name=data["name"],
            with_decryption=data["decrypt"],
            max_results=data.get("max_results"),
            next_token=data.get("next_token"),
        )
        return Response(
            shapes.HistoryResponse({"parameters": page.items, "next_token": page.next_token}).data,
            headers=NO_STORE if data["decrypt"] else None,
        )


# --- Labels and tags ------------------------------------------------------------------------


class ParameterLabelView(ParameterAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="parameters_label",
        request=shapes.LabelInput,
        responses=_responses(shapes.LabelResponse),
    )
    def post(self, request: Request) -> Response:
        """Labels a version (the newest by default); a label elsewhere on the parameter moves
        here. Labels breaking AWS's rules come back in `invalid_labels`."""
        data = body(shapes.LabelInput, request)
        result = services.parameter_label(
            principal=self.principal(),
            name=data["name"],
            labels=data["labels"],
            version=data.get("version"),
        )
        return Response(
            shapes.LabelResponse({"invalid_labels": result.invalid, "version": result.version}).data
        )


class ParameterUnlabelView(ParameterAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="parameters_unlabel",
        request=shapes.UnlabelInput,
        responses=_responses(shapes.UnlabelResponse),
    )
    def post(self, request: Request) -> Response:
        """Removes labels from a version; labels it does not carry come back invalid."""
        data = body(shapes.UnlabelInput, request)
        result = services.parameter_unlabel(
            principal=self.principal(),
            name=data["name"],
            version=data["version"],
            labels=data["labels"],
        )
        return Response(
            shapes.UnlabelResponse(
                {"removed_labels": result.removed, "invalid_labels": result.invalid}
            ).data
        )


class ParameterTagsView(ParameterAPIView):
    """GET lists a parameter's tags; POST adds (or overwrites) some; DELETE ?key= removes."""

    def _tags(self, name: str, tags: dict[str, str]) -> Response:
        return Response(shapes.ParameterTagsResponse({"name": name, "tags": tags}).data)

    @extend_schema(
        tags=[TAG],
        operation_id="parameters_tags_list",
        parameters=[shapes.NameQuery],
        responses=_responses(shapes.ParameterTagsResponse),
    )
    def get(self, request: Request) -> Response:
        name = query(shapes.NameQuery, request)["name"]
        return self._tags(name, selectors.parameter_tags(principal=self.principal(), name=name))

    @extend_schema(
        tags=[TAG],
        operation_id="parameters_tags_add",
        parameters=[shapes.NameQuery],
        request=shapes.ParameterTagsInput,
        responses=_responses(shapes.ParameterTagsResponse),
    )
    def post(self, request: Request) -> Response:
        name = query(shapes.NameQuery, request)["name"]
        tags = body(shapes.ParameterTagsInput, request)["tags"]
        merged = services.parameter_tags_add(principal=self.principal(), name=name, tags=tags)
        return self._tags(name, merged)

    @extend_schema(
        tags=[TAG],
        operation_id="parameters_tags_remove",
        parameters=[shapes.TagKeysQuery],
        responses=_responses(shapes.ParameterTagsResponse),
    )
    def delete(self, request: Request) -> Response:
        data = query(shapes.TagKeysQuery, request)
        left = services.parameter_tags_remove(
            principal=self.principal(), name=data["name"], keys=data["key"]
        )
        return self._tags(data["name"], left)


# --- Export, import, notices ----------------------------------------------------------------


class ParameterExportView(ParameterAPIView):
    # `format` names the file's format here, not DRF's renderer.
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        tags=[TAG],
        operation_id="parameters_export",
        parameters=[shapes.ExportQuery],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="{relative name: value}. Header X-Bosun-Skipped: how many "
                "SecureStrings were left out; X-Bosun-Exported: how many are in the file.",
            ),
            (200, "text/plain"): OpenApiResponse(
                OpenApiTypes.STR, description='KEY="value" lines (format=env).'
            ),
            **ERRORS,
        },
    )
    def get(self, request: Request) -> HttpResponse:
        """Every readable parameter below `path` (recursive), as a file to download."""
        data = query(shapes.ExportQuery, request)
        export = transfer.parameters_export(
            principal=self.principal(),
            path=data["path"],
            fmt=data["format"],
            with_decryption=data["decrypt"],
        )
        fmt = data["format"]
        stem = data["path"].strip("/").replace("/", "-") or "parameters"
        response = HttpResponse(
            export.content,
            content_type="application/json" if fmt == "json" else "text/plain; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{stem}.{fmt}"'
        response["X-Bosun-Exported"] = str(export.exported)
        response["X-Bosun-Skipped"] = str(len(export.skipped))
        if data["decrypt"]:
            response["Cache-Control"] = NO_STORE["Cache-Control"]
        return response


class ParameterImportView(ParameterAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="parameters_import",
        request=shapes.ImportInput,
        responses=_responses(shapes.ImportResponse),
    )
    def post(self, request: Request) -> Response:
        """Writes each entry as `<path>/<key>`, one at a time: a bad line fails alone."""
        data = body(shapes.ImportInput, request)
        result = transfer.parameters_import(
            principal=self.principal(),
            path=data["path"],
            content=data["content"],
            fmt=data["format"],
            parameter_type=data["type"],
            overwrite=data["overwrite"],
            key_id=data.get("key_id") or None,
        )
        return Response(
            shapes.ImportResponse({"results": result.lines, "failed": result.failed}).data
        )


class ParameterNoticesView(ParameterAPIView):
    @extend_schema(
        tags=[TAG],
        operation_id="parameters_notices",
        parameters=[shapes.NoticesQuery],
        responses=_responses(shapes.ParameterNoticesResponse),
    )
    def get(self, request: Request) -> Response:
        """The newest policy notices (expiring, expired, unchanged) the caller may see."""
        data = query(shapes.NoticesQuery, request)
        notices = selectors.parameter_notices(principal=self.principal(), limit=data["max_results"])
        return Response(shapes.ParameterNoticesResponse({"results": notices}).data)
