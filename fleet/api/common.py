"""What the fleet's API views share: the principal and pagination (errors: bosun.lib.api_errors)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from access.authorization import Principal, principal_of


class FleetPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class FleetAPIView(APIView):
    """Authenticated by the project's defaults; authorized by the services it calls, so an
    API caller and a page visitor meet the very same rules."""

    def principal(self) -> Principal:
        return principal_of(self.request, face="api")


def body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["The body is a JSON object."]})
    return data
