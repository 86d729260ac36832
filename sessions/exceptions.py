"""Errors of Session Manager, each with the AWS error code the SSM face renders.

AWS names only the session-level errors (DoesNotExistException, InvalidDocument, …). The
recording errors are between the relay and the server: they say precisely what went wrong
with a chunk, so the relay can tell a retry it may ignore from a recording it must stop.
"""

from __future__ import annotations

from bosun.lib.errors import BosunError


class SessionsError(BosunError):
    aws_code = "ValidationException"
    code = "sessions_error"


class DoesNotExistException(SessionsError):
    """An unknown session id (AWS answers TerminateSession and ResumeSession so)."""

    aws_code = "DoesNotExistException"
    code = "session_does_not_exist"
    http_status = 404


class RecordingError(SessionsError):
    """The recording refused a write: the chain would break, or the write makes no sense."""

    aws_code = "InternalServerError"
    code = "recording_error"
    http_status = 409


class RecordingNotStarted(RecordingError):
    code = "recording_not_started"


class RecordingAlreadyStarted(RecordingError):
    code = "recording_already_started"


class RecordingSealed(RecordingError):
    code = "recording_sealed"


class RecordingExpired(RecordingError):
    """Its chunks were deleted by the retention setting; the seal is all that is left."""

    code = "recording_expired"
    http_status = 410


class RecordingSequenceGap(RecordingError):
    """A chunk arrived ahead of one still missing: appending it would leave a hole."""

    code = "recording_sequence_gap"

    def __init__(self, message: str, *, expected: int, received: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received


class RecordingSequenceConflict(RecordingError):
    """A sequence number that was written before, with other data: never overwritten."""

    code = "recording_sequence_conflict"

    def __init__(self, message: str, *, sequence: int) -> None:
        super().__init__(message)
        self.sequence = sequence


class RecordingInvalid(RecordingError):
    """Data that is not asciicast v2 event lines, or a header value out of range."""

    aws_code = "ValidationException"
    code = "recording_invalid"
    http_status = 400


class SessionsValidationError(SessionsError):
    """A request the session services refuse as it stands (a missing reason, a bad size)."""

    code = "validation_error"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class InvalidDocument(SessionsError):
    """A session document this server does not run."""

    aws_code = "InvalidDocument"
    code = "invalid_document"


class TargetNotConnected(SessionsError):
    """The node's agent is offline: nobody would open the shell (AWS's code for it)."""

    aws_code = "TargetNotConnected"
    code = "target_not_connected"
    http_status = 409
