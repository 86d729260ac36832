"""Errors of documents and Run Command, each with the AWS error code the SSM face renders."""

from __future__ import annotations

from bosun.lib.errors import BosunError


class CommandsError(BosunError):
    aws_code = "ValidationException"
    code = "commands_error"

    def __init__(self, message: str, *, field: str = "", line: int | None = None) -> None:
        super().__init__(message)
        # Where the problem is, so pages can show it beside the field or the line.
        self.field = field
        self.line = line


class CommandsValidationError(CommandsError):
    code = "validation_error"


class InvalidDocument(CommandsError):
    aws_code = "InvalidDocument"
    code = "invalid_document"
    http_status = 404


class InvalidDocumentContent(CommandsError):
    aws_code = "InvalidDocumentContent"
    code = "invalid_document_content"


class InvalidDocumentSchemaVersion(CommandsError):
    aws_code = "InvalidDocumentSchemaVersion"
    code = "invalid_document_schema_version"


class InvalidDocumentVersion(CommandsError):
    aws_code = "InvalidDocumentVersion"
    code = "invalid_document_version"
    http_status = 404


class InvalidDocumentOperation(CommandsError):
    aws_code = "InvalidDocumentOperation"
    code = "invalid_document_operation"
    http_status = 403


class DocumentAlreadyExists(CommandsError):
    aws_code = "DocumentAlreadyExists"
    code = "document_already_exists"
    http_status = 409


class DuplicateDocumentContent(CommandsError):
    aws_code = "DuplicateDocumentContent"
    code = "duplicate_document_content"
    http_status = 409


class DuplicateDocumentVersionName(CommandsError):
    aws_code = "DuplicateDocumentVersionName"
    code = "duplicate_document_version_name"
    http_status = 409


class MaxDocumentSizeExceeded(CommandsError):
    aws_code = "MaxDocumentSizeExceeded"
    code = "max_document_size_exceeded"


class DocumentVersionLimitExceeded(CommandsError):
    aws_code = "DocumentVersionLimitExceeded"
    code = "document_version_limit_exceeded"


class InvalidParameters(CommandsError):
    aws_code = "InvalidParameters"
    code = "invalid_parameters"


class InvalidCommandId(CommandsError):
    aws_code = "InvalidCommandId"
    code = "invalid_command_id"
    http_status = 404


class InvocationDoesNotExist(CommandsError):
    aws_code = "InvocationDoesNotExist"
    code = "invocation_does_not_exist"
    http_status = 404


class InvalidPluginName(CommandsError):
    aws_code = "InvalidPluginName"
    code = "invalid_plugin_name"
    http_status = 404


class DuplicateInstanceId(CommandsError):
    aws_code = "DuplicateInstanceId"
    code = "duplicate_instance_id"


class CommandAlreadyEnded(InvalidCommandId):
    """Cancelling a command that has ended: a mistake of timing, not an unknown command."""

    code = "command_already_ended"
    http_status = 400


class TargetsMatchNothing(CommandsError):
    """A send whose targets reach no node the sender may run commands on (AWS answers
    InvalidInstanceId); a mistake in the request, so a 400 and not a missing page."""

    aws_code = "InvalidInstanceId"
    code = "targets_match_nothing"
