"""What every REST API view shares: strict input, the error shape, format-safe negotiation.

Errors themselves are rendered by bosun.lib.api_errors; the principal comes from
access.authorization.principal_of(request, face="api").
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# A response carrying a decrypted value must not be kept by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


def query(shape: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The query string checked by `shape`. An unknown parameter is refused: a misspelled
    filter must not quietly widen a listing."""
    serializer = shape(data=request.query_params)
    unknown = sorted(set(request.query_params) - set(serializer.fields))
    if unknown:
        known = ", ".join(serializer.fields)
        raise exceptions.ValidationError(
            {unknown[0]: [f"Unknown query parameter; this endpoint takes {known}."]}
        )
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def body(shape: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["The body is a JSON object."]})
    serializer = shape(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class FirstRendererNegotiation(DefaultContentNegotiation):
    """Ignores DRF's `?format=` renderer override, for views whose own `format` parameter
    names a file format."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = renderers[0]
        return renderer, renderer.media_type


class StrictBoolean(serializers.BooleanField):
    """true/false/1/0 and nothing else: a typo must not quietly read as false."""

    default_error_messages = {"invalid": "Give true, false, 1 or 0."}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        text = str(data).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        self.fail("invalid")
        raise AssertionError("unreachable")


class ApiErrorSerializer(serializers.Serializer):
    """Every error: one readable line, a machine code, and per-field detail for form errors."""

    detail = serializers.CharField()
    code = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # `fields` can't be declared: the name is the serializer's own property.
        fields = super().get_fields()
        fields["fields"] = serializers.DictField(
            required=False, help_text="Per-field messages, for a 400 about the request's form."
        )
        return fields
