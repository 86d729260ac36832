"""Errors the AWS endpoint answers before (or instead of) any operation: each carries AWS's
code, its message and the HTTP status clients expect (ssm-api.md "Errors")."""

from __future__ import annotations


class AwsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


def unrecognized_client(message: str = INVALID_TOKEN) -> AwsError:
    return AwsError("UnrecognizedClientException", message)


def invalid_signature(message: str = SIGNATURE_MISMATCH) -> AwsError:
    return AwsError("InvalidSignatureException", message)


def incomplete_signature(message: str) -> AwsError:
    return AwsError("IncompleteSignatureException", message)


def missing_token() -> AwsError:
    return AwsError(
        "MissingAuthenticationTokenException", "Request is missing Authentication Token"
    )


def serialization(message: str) -> AwsError:
    return AwsError("SerializationException", message)


def unknown_operation(target: str, *, modelled: bool = False) -> AwsError:
    """`target` as the client sent it; `modelled`: SSM has the operation, Bosun does not
    serve it (yet)."""
    if not target:
        message = "Send the operation in the X-Amz-Target header (AmazonSSM.<Operation>)."
    elif modelled:
        message = f"The operation {target!r} is not served by Bosun yet."
    else:
        message = f"{target!r} is not an operation of the SSM API (AmazonSSM.<Operation>)."
    return AwsError("UnknownOperationException", message)


def validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def invalid_next_token() -> AwsError:
    return AwsError("InvalidNextToken", "The specified token is not valid.")


def access_denied(message: str) -> AwsError:
    return AwsError("AccessDeniedException", message)


def internal(request_id: str) -> AwsError:
    return AwsError(
        "InternalServerError",
        f"Bosun failed to process the request; the server's log has the details under "
        f"request id {request_id}.",
        status=500,
    )
