"""What the Parameter Store API views share: the principal, strict input, no-store responses
(errors: bosun.lib.api_errors)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from access.authorization import Principal, principal_of

TAG = "Parameter Store"
# A response carrying a decrypted value must not be kept by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


class ParameterAPIView(APIView):
    """Authenticated by the project's defaults; authorized by the services and selectors it
    calls, so an API caller and a page visitor meet the very same rules."""

    def principal(self) -> Principal:
        return principal_of(self.request, face="api")


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
