"""Verifying AWS Signature Version 4 on the server (ssm-api.md "SigV4 verification").

Our own ~100 lines rather than botocore's signer: the signer recomputes headers it would send
(it drops `user-agent`, `expect`, … even when a client signed them, and stamps the current
time), where a verifier must rebuild the canonical request from exactly what the client
signed: the headers listed in SignedHeaders, the raw Host with its port, the raw body's hash.

`parse` checks everything that needs no secret (the header's shape, the scope, the clock, a
body hash that lies); the caller then looks the key up and calls `verify` with its secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote

from bosun.lib.aws import errors

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "ssm"
TERMINATOR = "aws4_request"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_PRESIGNED = frozenset({"x-amz-signature", "x-amz-algorithm", "x-amz-credential"})
_CLAIMED_KEY_ID = re.compile(r"Credential=([A-Za-z0-9]{1,128})/")


@dataclass(frozen=True)
class SignedRequest:
    """The request as the client sent it: `headers` by lowercase name, values raw."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Signature:
    access_key_id: str
    date: str  # YYYYMMDD, from the scope
    region: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # X-Amz-Date


def claimed_key_id(request: SignedRequest) -> str:
    """The access key id the Authorization header names, if any (for the audit trail of a
    request refused before its key was looked up)."""
    found = _CLAIMED_KEY_ID.search(request.headers.get("authorization", ""))
    return found.group(1)[:20] if found else ""


def parse(request: SignedRequest, *, now: datetime, skew: timedelta) -> Signature:
    """The request's signature parameters; AwsError for anything a secret is not needed to
    refuse."""
    if request.query and _PRESIGNED & {name.lower() for name, _ in parse_qsl(request.query)}:
        raise errors.incomplete_signature(
            "Presigned (query string) requests are not accepted: sign the Authorization header."
        )
    authorization = request.headers.get("authorization", "").strip()
    if not authorization:
        raise errors.missing_token()
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != ALGORITHM:
        if algorithm == "AWS4-ECDSA-P256-SHA256":
            raise errors.incomplete_signature(
                "SigV4a (AWS4-ECDSA-P256-SHA256) is not supported: sign with SigV4 "
                "(AWS4-HMAC-SHA256) for one region."
            )
        raise errors.incomplete_signature(
            f"Unsupported Authorization type {algorithm[:40]!r}: expected {ALGORITHM}."
        )
    if "x-amz-security-token" in request.headers:
        # Bosun issues no temporary credentials: a session token is someone else's.
        raise errors.unrecognized_client(
            f"{errors.INVALID_TOKEN} Bosun issues no temporary credentials: sign with an "
            "access key's id and secret, without X-Amz-Security-Token (unset "
            "AWS_SESSION_TOKEN, or use a profile without aws_session_token)."
        )
    fields = _fields(rest)
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or credential[4] != TERMINATOR:
        raise errors.incomplete_signature(
            "Authorization header's Credential is malformed: expected "
            "<AccessKeyId>/<YYYYMMDD>/<region>/ssm/aws4_request."
        )
    key_id, date, region, service, _ = credential
    if not _KEY_ID.fullmatch(key_id):
        raise errors.unrecognized_client()
    if service != SERVICE:
        raise errors.invalid_signature(
            f"Credential should be scoped to correct service: '{SERVICE}'. This endpoint "
            f"serves only SSM; the request was signed for {service[:40]!r}."
        )
    if not re.fullmatch(r"[a-z0-9-]{1,40}", region):
        raise errors.incomplete_signature(f"Credential names an invalid region {region[:40]!r}.")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.fullmatch(name) for name in signed) or list(signed) != sorted(signed):
        raise errors.incomplete_signature(
            "SignedHeaders must list lowercase header names, sorted, separated by ';'."
        )
    if "host" not in signed:
        raise errors.incomplete_signature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    missing = [name for name in signed if name not in request.headers]
    if missing:
        raise errors.incomplete_signature(
            f"Signed header {missing[0]!r} is missing from the request."
        )
    signature = fields["Signature"]
    if not _SIGNATURE.fullmatch(signature):
        raise errors.incomplete_signature("Signature must be 64 lowercase hex characters.")
    amz_date = request.headers.get("x-amz-date", "")
    if "x-amz-date" not in signed:
        raise errors.incomplete_signature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
            "header, signed."
        )
    try:
        if not _AMZ_DATE.fullmatch(amz_date):
            raise ValueError(amz_date)
        stamp = datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise errors.incomplete_signature(
            f"X-Amz-Date must be in ISO 8601 basic format (YYYYMMDDTHHMMSSZ), not "
            f"{amz_date[:40]!r}."
        ) from None
    if amz_date[:8] != date:
        raise errors.invalid_signature(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    _check_clock(stamp, now, skew)
    declared = request.headers.get("x-amz-content-sha256")
    if declared is not None and declared != hashlib.sha256(request.body).hexdigest():
        raise errors.invalid_signature(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    return Signature(key_id, date, region, signed, signature, amz_date)


def verify(request: SignedRequest, signature: Signature, *, secret: str) -> None:
    """InvalidSignatureException unless `secret` signed the request as `signature` says."""
    expected = signature_of(request, signature, secret=secret)
    if not hmac.compare_digest(expected, signature.signature):
        raise errors.invalid_signature()


def signature_of(request: SignedRequest, signature: Signature, *, secret: str) -> str:
    scope = f"{signature.date}/{signature.region}/{SERVICE}/{TERMINATOR}"
    canonical = canonical_request(request, signature.signed_headers)
    to_sign = "\n".join(
        [ALGORITHM, signature.amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret}".encode(), signature.date)
    for part in (signature.region, SERVICE, TERMINATOR):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def canonical_request(request: SignedRequest, signed_headers: tuple[str, ...]) -> str:
    headers = "".join(
        f"{name}:{' '.join(request.headers[name].split())}\n" for name in signed_headers
    )
    return "\n".join(
        [
            request.method.upper(),
            _canonical_path(request.path),
            _canonical_query(request.query),
            headers,
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )


def _fields(rest: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, equals, value = part.strip().partition("=")
        if equals:
            fields[name] = value.strip()
    absent = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in fields]
    if absent:
        raise errors.incomplete_signature(
            " ".join(f"Authorization header requires '{name}' parameter." for name in absent)
            + f" Authorization={ALGORITHM} "
            + ", ".join(f"{name}=…" for name in fields)
        )
    return fields


def _check_clock(stamp: datetime, now: datetime, skew: timedelta) -> None:
    minutes = f"{int(skew.total_seconds() // 60)} min."
    if stamp < now - skew:
        raise errors.invalid_signature(
            f"Signature expired: {stamp:{AMZ_DATE}} is now earlier than "
            f"{now - skew:{AMZ_DATE}} ({now:{AMZ_DATE}} - {minutes})"
        )
    if stamp > now + skew:
        raise errors.invalid_signature(
            f"Signature not yet current: {stamp:{AMZ_DATE}} is still later than "
            f"{now + skew:{AMZ_DATE}} ({now:{AMZ_DATE}} + {minutes})"
        )


def _canonical_path(path: str) -> str:
    # As botocore signs a non-S3 request: the path as sent, each character outside the
    # unreserved set percent-encoded (so an encoded path is encoded once more).
    return quote(path or "/", safe="/~")


def _canonical_query(query: str) -> str:
    # Each name and value URI-encoded once, then sorted by the encoded name (then value), as
    # botocore and the SigV4 specification sort: sorting before encoding orders `a/` and
    # `a-` differently.
    pairs = sorted(
        (quote(name, safe="-_.~"), quote(value, safe="-_.~"))
        for name, value in parse_qsl(query, keep_blank_values=True)
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
