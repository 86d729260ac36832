"""The AWS SSM API on `POST /` of the same port (DESIGN.md "AWS endpoint", ssm-api.md).

One more face on the same services: verify the SigV4 signature with the caller's access key,
build their Principal (face "aws"), check the input against botocore's model, call the
operation its app registered (bosun.lib.aws.registry), render the answer or the error as AWS
does. The operations authorize and audit through the services; a failed authentication is
audited here, as the REST API's is.

A middleware rather than a URL: `POST /` with an `X-Amz-Target` (or a SigV4 Authorization) is
taken before the session, CSRF and MFA middlewares, which have nothing to say to an SDK, and
before anything could read the body the signature covers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from access import key_cache, services
from access.authorization import Principal
from audit.failures import audit_failed_authentication
from bosun.lib.aws import errors, model, registry, sigv4, wire
from bosun.lib.errors import BosunError

logger = logging.getLogger(__name__)

# AWS allows 5 minutes of clock difference either way (S3 and MinIO 15).
CLOCK_SKEW = timedelta(minutes=5)
FACE = "aws"


class AwsEndpointMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_aws_request(request):
            return aws_endpoint(request)
        return self.get_response(request)


def is_aws_request(request: HttpRequest) -> bool:
    if request.method != "POST" or request.path_info != "/":
        return False
    meta = request.META
    return (
        "HTTP_X_AMZ_TARGET" in meta
        or meta.get("HTTP_AUTHORIZATION", "").startswith("AWS4")
        # A presigned request names no operation and carries no header: refuse it here too.
        or "x-amz-" in meta.get("QUERY_STRING", "").lower()
    )


def aws_endpoint(request: HttpRequest) -> HttpResponse:
    request_id = wire.new_request_id()
    try:
        return wire.respond(_answer(request, request_id), request_id=request_id)
    except errors.AwsError as error:
        return wire.respond_error(error, request_id=request_id)
    except BosunError as error:
        return wire.respond_error(_from_domain(error), request_id=request_id)
    except Exception:
        logger.exception("AWS endpoint: internal error, request id %s", request_id)
        return wire.respond_error(errors.internal(request_id), request_id=request_id)


def _answer(request: HttpRequest, request_id: str) -> dict:
    signed = _signed_request(request)
    try:
        signature = sigv4.parse(signed, now=timezone.now(), skew=CLOCK_SKEW)
    except errors.AwsError as error:
        _audit_failure(request, sigv4.claimed_key_id(signed), error, request_id)
        raise
    principal = _authenticate(request, signed, signature, request_id)
    target = request.META.get("HTTP_X_AMZ_TARGET", "")
    name = wire.operation_of(target)
    handler = registry.handler_for(name)
    operation = model.operation_model(name)
    if handler is None or operation is None:
        raise errors.unknown_operation(target[:100], modelled=operation is not None)
    params = model.validate(operation, wire.body_of(signed.body))
    call = registry.AwsCall(
        principal=principal,
        params=params,
        region=signature.region,
        account_id=settings.BOSUN.account_id,
        request_id=request_id,
        origin=f"{request.scheme}://{signed.headers['host']}",
    )
    return handler(call) or {}


def _signed_request(request: HttpRequest) -> sigv4.SignedRequest:
    # Refused before reading: Django would raise RequestDataTooBig past its own limit.
    wire.check_length(request.META.get("CONTENT_LENGTH"))
    try:
        body = request.body
    except RequestDataTooBig:
        raise errors.serialization("The request body is too large.") from None
    headers: dict[str, str] = {}
    for key, value in request.META.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers[key.replace("_", "-").lower()] = value
    return sigv4.SignedRequest(
        method=request.method or "POST",
        path=request.path,
        query=request.META.get("QUERY_STRING", ""),
        headers=headers,
        body=body,
    )


def _authenticate(
    request: HttpRequest,
    signed: sigv4.SignedRequest,
    signature: sigv4.Signature,
    request_id: str,
) -> Principal:
    source_ip = request.META.get("REMOTE_ADDR", "")
    try:
        usable = key_cache.usable_key(signature.access_key_id)
        if usable is None:
            raise errors.unrecognized_client()
        access_key, secret = usable
        sigv4.verify(signed, signature, secret=secret)
    except errors.AwsError as error:
        _audit_failure(request, signature.access_key_id, error, request_id)
        raise
    services.access_key_mark_used(access_key=access_key, source_ip=source_ip)
    return Principal(
        user=access_key.user,
        face=FACE,
        source_ip=source_ip,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
        access_key_id=access_key.access_key_id,
        request_id=request_id,
    )


def _audit_failure(
    request: HttpRequest, key_id: str, error: errors.AwsError, request_id: str
) -> None:
    audit_failed_authentication(
        principal=f"access-key:{key_id[:20]}" if key_id else "anonymous",
        action="bosun:Authenticate",
        outcome="denied",
        error_code=error.code,
        source_ip=request.META.get("REMOTE_ADDR", ""),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
        request_id=request_id,
        face=FACE,
    )


def _from_domain(error: BosunError) -> errors.AwsError:
    code = error.aws_code
    if code == "InternalServerError":
        # A domain error without an AWS name is still the caller's mistake, never a fault.
        code = "ValidationException"
    return errors.AwsError(code, error.message, status=400)
