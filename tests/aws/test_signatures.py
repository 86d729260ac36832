"""SigV4 on the wire: raw requests signed by botocore's signer, tampered with, sent to the live
server. Every refusal is AWS's error shape with AWS's code, and failed authentications are
audited on the "aws" face."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from access.authorization import Principal
from access.models import AccessKey
from access.services import access_key_set_status
from audit.models import AuditEvent
from tests.aws.signing import Answer, call, send, sign
from tests.factories import UserFactory

GET = json.dumps({"Name": "greeting"})
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def refused(answer: Answer, code: str) -> str:
    """Assert AWS's error shape and return the message."""
    assert answer.status == 400, answer.raw
    assert answer.headers["content-type"] == "application/x-amz-json-1.1"
    body = answer.json
    assert body["__type"] == code, body
    assert body["message"] == body["Message"]
    assert UUID.match(answer.headers["x-amzn-requestid"])
    parsedate_to_datetime(answer.headers["date"])
    return body["message"]


def failed_authentications(request_id: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action="bosun:Authenticate", outcome="denied", face="aws", request_id=request_id
        )
    )


def test_a_good_signature_gets_the_parameter(url, keys):
    answer = call(url, GET, key_id=keys[0], secret=keys[1])
    assert answer.status == 200, answer.raw
    assert answer.json["Parameter"]["Value"] == "hello"
    assert UUID.match(answer.headers["x-amzn-requestid"])
    stamp = parsedate_to_datetime(answer.headers["date"])
    assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_wrong_secret_is_an_invalid_signature_and_is_audited(url, keys):
    answer = call(url, GET, key_id=keys[0], secret="x" * 40)
    assert refused(answer, "InvalidSignatureException") == MISMATCH
    [event] = failed_authentications(answer.headers["x-amzn-requestid"])
    assert event.principal == f"access-key:{keys[0]}"
    assert event.error_code == "InvalidSignatureException"


def test_an_unknown_key_id_is_an_unrecognized_client_and_is_audited(url):
    answer = call(url, GET, key_id="AKIA" + "Z" * 16, secret="x" * 40)
    assert refused(answer, "UnrecognizedClientException") == INVALID_TOKEN
    assert failed_authentications(answer.headers["x-amzn-requestid"])


def test_a_deactivated_key_is_an_unrecognized_client(url, keys, admin):
    key = AccessKey.objects.get(access_key_id=keys[0])
    access_key_set_status(principal=Principal(user=admin), access_key=key, active=False)
    answer = call(url, GET, key_id=keys[0], secret=keys[1])
    assert refused(answer, "UnrecognizedClientException") == INVALID_TOKEN


def test_the_key_of_a_deactivated_user_is_an_unrecognized_client(url, keys_for):
    user = UserFactory(username="gone")
    key_id, secret = keys_for(user)
    user.is_active = False
    user.save()
    answer = call(url, GET, key_id=key_id, secret=secret)
    assert refused(answer, "UnrecognizedClientException") == INVALID_TOKEN


def test_a_signature_older_than_five_minutes_has_expired_and_is_audited(url, keys):
    when = datetime.now(UTC) - timedelta(minutes=6)
    answer = call(url, GET, key_id=keys[0], secret=keys[1], when=when)
    message = refused(answer, "InvalidSignatureException")
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    assert re.fullmatch(
        rf"Signature expired: {stamp} is now earlier than (\d{{8}}T\d{{6}}Z) "
        r"\((\d{8}T\d{6}Z) - 5 min\.\)",
        message,
    ), message
    [event] = failed_authentications(answer.headers["x-amzn-requestid"])
    assert event.principal == f"access-key:{keys[0]}"


def test_a_signature_dated_four_minutes_ago_is_still_accepted(url, keys):
    when = datetime.now(UTC) - timedelta(minutes=4)
    assert call(url, GET, key_id=keys[0], secret=keys[1], when=when).status == 200


def test_a_signature_from_the_future_is_not_yet_current(url, keys):
    when = datetime.now(UTC) + timedelta(minutes=6)
    message = refused(
        call(url, GET, key_id=keys[0], secret=keys[1], when=when), "InvalidSignatureException"
    )
    assert message.startswith(f"Signature not yet current: {when:%Y%m%dT%H%M%SZ} is still later")
    assert message.endswith(" + 5 min.)")


def test_a_body_changed_after_signing_is_refused(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    answer = send(url, headers, json.dumps({"Name": "other"}))
    assert refused(answer, "InvalidSignatureException") == MISMATCH


def test_an_unsigned_header_added_after_signing_is_ignored(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    headers["amz-sdk-invocation-id"] = "d6b5c1a4-0000-4000-8000-000000000000"
    headers["User-Agent"] = "something/1.0   with   spaces"
    assert send(url, headers, GET).status == 200


def test_a_signed_header_changed_after_signing_is_refused(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1], headers={"X-Custom": "one"})
    assert "x-custom" in headers["Authorization"]
    headers["X-Custom"] = "two"
    assert refused(send(url, headers, GET), "InvalidSignatureException") == MISMATCH


def test_a_signed_header_with_extra_whitespace_still_verifies(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1], headers={"X-Custom": "a b"})
    headers["X-Custom"] = "  a    b  "
    assert send(url, headers, GET).status == 200


def test_a_header_botocore_would_not_sign_is_verified_when_the_client_signed_it(url, keys):
    # botocore never signs User-Agent; other SDKs may. The server follows SignedHeaders.
    headers = sign(
        url,
        GET,
        key_id=keys[0],
        secret=keys[1],
        headers={"User-Agent": "sdk/2"},
        sign_everything=True,
    )
    assert "user-agent" in headers["Authorization"]
    assert send(url, headers, GET).status == 200
    headers["User-Agent"] = "sdk/3"
    assert refused(send(url, headers, GET), "InvalidSignatureException") == MISMATCH


def test_the_host_is_verified_with_its_non_default_port(url, keys):
    assert ":" in url.split("//")[1], "the live server listens on a non-default port"
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    assert send(url, headers, GET).status == 200
    port = url.split(":")[2].rstrip("/")
    headers["Host"] = headers["Host"].replace(f":{port}", "")
    assert refused(send(url, headers, GET), "InvalidSignatureException") == MISMATCH


def test_a_request_without_a_signed_host_is_incomplete(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    headers["Authorization"] = headers["Authorization"].replace("host;", "")
    message = refused(send(url, headers, GET), "IncompleteSignatureException")
    assert "'Host'" in message


def test_a_content_hash_that_lies_is_refused(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    headers["X-Amz-Content-SHA256"] = "0" * 64
    message = refused(send(url, headers, GET), "InvalidSignatureException")
    assert "x-amz-content-sha256" in message


def test_a_true_content_hash_signed_by_the_client_is_accepted(url, keys):
    import hashlib

    digest = hashlib.sha256(GET.encode()).hexdigest()
    headers = sign(
        url, GET, key_id=keys[0], secret=keys[1], headers={"X-Amz-Content-SHA256": digest}
    )
    assert send(url, headers, GET).status == 200


def test_temporary_credentials_are_refused_with_a_clear_message(url, keys):
    answer = call(url, GET, key_id=keys[0], secret=keys[1], token="FwoGZXIvYXdzEJr//session")
    message = refused(answer, "UnrecognizedClientException")
    assert message.startswith(INVALID_TOKEN)
    assert "X-Amz-Security-Token" in message
    assert failed_authentications(answer.headers["x-amzn-requestid"])


def test_sigv4a_is_refused_explicitly(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    headers["Authorization"] = headers["Authorization"].replace(
        "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"
    )
    message = refused(send(url, headers, GET), "IncompleteSignatureException")
    assert "SigV4a" in message


def test_a_request_scoped_to_sts_gets_a_clear_error(url, keys):
    answer = call(url, GET, key_id=keys[0], secret=keys[1], service="sts")
    message = refused(answer, "InvalidSignatureException")
    assert message.startswith("Credential should be scoped to correct service: 'ssm'.")
    assert "'sts'" in message


def test_a_scope_date_that_is_not_the_request_date_is_refused(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    today = headers["X-Amz-Date"][:8]
    headers["Authorization"] = headers["Authorization"].replace(f"/{today}/", "/20200101/")
    message = refused(send(url, headers, GET), "InvalidSignatureException")
    assert "Date in Credential scope does not match" in message


def test_a_presigned_query_is_refused(url, keys):
    presigned = (
        url + "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={keys[0]}%2F20261127%2Feu-west-1%2Fssm%2Faws4_request"
        "&X-Amz-Date=20261127T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + "0" * 64
    )
    host = url.split("//")[1].rstrip("/")
    headers = {"Host": host, "Content-Type": "application/x-amz-json-1.1"}
    message = refused(send(presigned, headers, GET), "IncompleteSignatureException")
    assert "Presigned" in message
    # Even with an operation named, and whatever else is signed.
    headers["X-Amz-Target"] = "AmazonSSM.GetParameter"
    refused(send(presigned, headers, GET), "IncompleteSignatureException")


def test_a_request_without_authorization_is_missing_its_token_and_is_audited(url):
    host = url.split("//")[1].rstrip("/")
    headers = {
        "Host": host,
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AmazonSSM.GetParameter",
    }
    answer = send(url, headers, GET)
    assert refused(answer, "MissingAuthenticationTokenException") == (
        "Request is missing Authentication Token"
    )
    assert failed_authentications(answer.headers["x-amzn-requestid"])


def test_a_malformed_authorization_header_is_an_incomplete_signature(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=" + keys[0]
    refused(send(url, headers, GET), "IncompleteSignatureException")
    headers["Authorization"] = "AWS4-HMAC-SHA256"
    refused(send(url, headers, GET), "IncompleteSignatureException")


def test_a_garbled_signature_is_an_incomplete_signature(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    headers["Authorization"] = re.sub(r"Signature=\w+", "Signature=XYZ", headers["Authorization"])
    refused(send(url, headers, GET), "IncompleteSignatureException")


def test_a_malformed_date_is_an_incomplete_signature(url, keys):
    headers = sign(url, GET, key_id=keys[0], secret=keys[1])
    headers["X-Amz-Date"] = headers["X-Amz-Date"][:8] + "T1234Z"
    refused(send(url, headers, GET), "IncompleteSignatureException")


def test_a_lowercase_key_id_is_an_unrecognized_client(url, keys):
    answer = call(url, GET, key_id=keys[0].lower(), secret=keys[1])
    assert refused(answer, "UnrecognizedClientException") == INVALID_TOKEN


def test_an_oversized_body_is_refused_before_it_is_read(url, keys):
    body = json.dumps({"Name": "x" * (3 * 1024 * 1024)})
    headers = sign(url, body, key_id=keys[0], secret=keys[1])
    message = refused(send(url, headers, body), "SerializationException")
    assert "bytes" in message


def test_a_boto3_client_in_another_region_is_accepted(client_for, admin, url):
    other = client_for(admin, region="cn-north-1")
    got = other.get_parameter(Name="greeting")["Parameter"]
    assert got["ARN"].startswith("arn:aws-cn:ssm:cn-north-1:")
