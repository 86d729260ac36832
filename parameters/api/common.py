"""What the Parameter Store API views share: the principal, strict input, no-store responses
(input helpers: bosun.lib.api; errors: bosun.lib.api_errors)."""

from __future__ import annotations

from rest_framework.views import APIView

from access.authorization import Principal, principal_of

TAG = "Parameter Store"


class ParameterAPIView(APIView):
    """Authenticated by the project's defaults; authorized by the services and selectors it
    calls, so an API caller and a page visitor meet the very same rules."""

    def principal(self) -> Principal:
        return principal_of(self.request, face="api")
