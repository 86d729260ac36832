"""The root of every domain's exception hierarchy (DESIGN.md §4).

Each error carries what every face needs to render it: the AWS error code for the AWS endpoint,
a short machine code and an HTTP status for DRF and htmx, and a message a person can act on.
"""

from __future__ import annotations


class BosunError(Exception):
    aws_code = "InternalServerError"
    code = "error"
    http_status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccessDenied(BosunError):
    aws_code = "AccessDeniedException"
    code = "access_denied"
    http_status = 403
