"""Webhook errors, each with the AWS error code, machine code and status its faces render."""

from __future__ import annotations

from bosun.lib.errors import BosunError


class WebhookError(BosunError):
    aws_code = "ValidationException"
    code = "webhook_error"


class WebhookValidationError(WebhookError):
    code = "validation_error"


class WebhookNameTaken(WebhookError):
    code = "webhook_name_taken"
    http_status = 409


class WebhookNotFound(WebhookError):
    aws_code = "ResourceNotFoundException"
    code = "webhook_not_found"
    http_status = 404


class DeliveryNotFound(WebhookError):
    aws_code = "ResourceNotFoundException"
    code = "delivery_not_found"
    http_status = 404


class DeliveryNotRetryable(WebhookError):
    code = "delivery_not_retryable"
    http_status = 409


class WebhookDisabled(WebhookError):
    code = "webhook_disabled"
    http_status = 409
