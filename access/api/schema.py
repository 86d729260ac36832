"""How the OpenAPI document describes the REST API's access-key scheme.

drf-spectacular needs an extension per authentication class; it registers on import (the
views import this module). It names the class by its path, so nothing is imported from it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AccessKeyScheme(OpenApiAuthenticationExtension):
    target_class = "access.api.authentication.AccessKeyAuthentication"
    name = "accessKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "<AccessKeyId>:<SecretAccessKey>",
            "description": "An access key: Authorization: Bearer <AccessKeyId>:<Secret>.",
        }
