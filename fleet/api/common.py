"""What the fleet's API views share: the principal, errors as {detail, code}, pagination."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.authorization import Principal, principal_of
from bosun.lib.errors import BosunError


class FleetPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class FleetAPIView(APIView):
    """Authenticated by the project's defaults; authorized by the services it calls, so an
    API caller and a page visitor meet the very same rules."""

    def principal(self) -> Principal:
        return principal_of(self.request, face="api")

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, BosunError):
            return Response({"detail": exc.message, "code": exc.code}, status=exc.http_status)
        if isinstance(exc, exceptions.ValidationError):
            return Response(
                {
                    "detail": _first_message(exc.detail),
                    "code": "validation_error",
                    "fields": exc.detail,
                },
                status=400,
            )
        return super().handle_exception(exc)


def _first_message(detail: Any, path: str = "") -> str:
    """One readable line from DRF's nested error detail: `field: message`."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            return _first_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        return _first_message(detail[0], path)
    return f"{path}: {detail}" if path and path != "non_field_errors" else str(detail)


def body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["The body is a JSON object."]})
    return data
