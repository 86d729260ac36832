"""One error shape for every REST API view: `{"detail": text, "code": machine_code}`.

A domain error (BosunError) carries its own message, code and status (DESIGN.md §4); DRF's
validation errors become one readable line plus the per-field detail; anything else keeps
DRF's own handling (401, 403, 404, 405…).
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from bosun.lib.errors import BosunError


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, BosunError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.http_status)
    if isinstance(exc, exceptions.ValidationError):
        return Response(
            {"detail": first_message(exc.detail), "code": "validation_error", "fields": exc.detail},
            status=400,
        )
    return drf_exception_handler(exc, context)


def first_message(detail: Any, path: str = "") -> str:
    """One readable line from DRF's nested error detail: `field: message`."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            return first_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        return first_message(detail[0], path)
    return f"{path}: {detail}" if path and path != "non_field_errors" else str(detail)
