"""bosun.lib.aws.sigv4 recomputes exactly what botocore's signer signs, over the shapes of
headers, paths and queries clients send."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from bosun.lib.aws import errors, sigv4

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = datetime(2026, 11, 27, 1, 2, 3, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def botocore_signed(
    url: str,
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    region: str = "eu-west-1",
) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        params=params or {},
        headers={"X-Amz-Target": "AmazonSSM.GetParameter", **(headers or {})},
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        SigV4Auth(Credentials(KEY_ID, SECRET), "ssm", region).add_auth(request)
    return request


def as_received(request: AWSRequest, *, host: str | None = None) -> sigv4.SignedRequest:
    """What the server sees: the prepared request's path and query, lowercase headers."""
    prepared = request.prepare()
    path, _, query = prepared.url.split("/", 3)[3].partition("?")
    headers = {name.lower(): value for name, value in prepared.headers.items()}
    headers["host"] = host or prepared.url.split("/")[2]
    body = prepared.body or b""
    return sigv4.SignedRequest(
        method="POST",
        path="/" + path,
        query=query,
        headers=headers,
        body=body if isinstance(body, bytes) else body.encode(),
    )


def verifies(received: sigv4.SignedRequest, *, secret: str = SECRET) -> bool:
    signature = sigv4.parse(received, now=NOW, skew=SKEW)
    try:
        sigv4.verify(received, signature, secret=secret)
    except errors.AwsError:
        return False
    return True


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/",
        "https://ssm.example.com/",
        "http://127.0.0.1:49152/",
        "http://[::1]:8000/",
        "https://bosun.example.com/prefix/",
    ],
)
def test_a_botocore_signature_verifies_for_any_host_and_path(url):
    assert verifies(as_received(botocore_signed(url)))


@pytest.mark.parametrize(
    "params",
    [
        {"a": "1"},
        {"b": "2", "a": "1"},
        {"a/": "x", "a-": "y"},
        {"key": "with space", "other": "plus+and/slash"},
        {"empty": ""},
        {"ünï": "cödé", "~tilde": "_.-"},
    ],
)
def test_a_botocore_signature_verifies_whatever_the_query(params):
    assert verifies(as_received(botocore_signed("http://localhost:8000/", params=params)))


def test_the_query_is_sorted_by_its_encoded_names():
    received = sigv4.SignedRequest("POST", "/", "a-=1&a%2F=2", {}, b"")
    canonical = sigv4.canonical_request(received, ()).split("\n")
    assert canonical[2] == "a%2F=2&a-=1"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Custom": "plain"},
        {"X-Custom": "  leading and trailing  "},
        {"X-Custom": "inner    spaces\tand tabs"},
        {"X-Zed": "last", "X-Alpha": "first", "X-Mid": "middle"},
        {"X-Empty": ""},
        {"X-Amz-Content-SHA256": hashlib.sha256(b"{}").hexdigest()},
    ],
)
def test_a_botocore_signature_verifies_whatever_the_headers(headers):
    assert verifies(as_received(botocore_signed("http://localhost:8000/", headers=headers)))


def test_header_whitespace_is_trimmed_and_collapsed_on_the_server_too():
    received = as_received(botocore_signed("http://localhost:8000/", headers={"X-Custom": "a b"}))
    squeezed = dict(received.headers, **{"x-custom": "   a  \t  b   "})
    assert verifies(sigv4.SignedRequest("POST", "/", "", squeezed, received.body))


def test_the_order_headers_arrive_in_does_not_matter():
    received = as_received(
        botocore_signed("http://localhost:8000/", headers={"X-B": "2", "X-A": "1"})
    )
    reversed_headers = dict(reversed(list(received.headers.items())))
    assert verifies(sigv4.SignedRequest("POST", "/", "", reversed_headers, received.body))


def test_headers_that_were_not_signed_are_left_out():
    received = as_received(botocore_signed("http://localhost:8000/"))
    extra = dict(received.headers, **{"user-agent": "x", "amz-sdk-request": "attempt=1"})
    assert verifies(sigv4.SignedRequest("POST", "/", "", extra, received.body))


def test_another_secret_does_not_verify():
    assert not verifies(as_received(botocore_signed("http://localhost:8000/")), secret="x" * 40)


def test_another_port_does_not_verify():
    received = as_received(botocore_signed("http://localhost:8000/"), host="localhost")
    assert not verifies(received)


def test_the_canonical_request_is_botocores():
    request = botocore_signed(
        "http://localhost:8000/", b'{"Name":"x"}', headers={"X-Custom": " a   b "}
    )
    received = as_received(request)
    signature = sigv4.parse(received, now=NOW, skew=SKEW)
    del request.headers["Authorization"]
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        auth = SigV4Auth(Credentials(KEY_ID, SECRET), "ssm", "eu-west-1")
        request.context["timestamp"] = NOW.strftime("%Y%m%dT%H%M%SZ")
        expected = auth.canonical_request(request)
    assert sigv4.canonical_request(received, signature.signed_headers) == expected


def test_parse_reads_the_scope():
    signature = sigv4.parse(
        as_received(botocore_signed("http://localhost:8000/", region="cn-north-1")),
        now=NOW,
        skew=SKEW,
    )
    assert (signature.access_key_id, signature.date, signature.region) == (
        KEY_ID,
        "20261127",
        "cn-north-1",
    )
    assert signature.signed_headers == ("host", "x-amz-date", "x-amz-target")


def test_the_clock_window_is_inclusive_of_its_edge():
    received = as_received(botocore_signed("http://localhost:8000/"))
    sigv4.parse(received, now=NOW + SKEW, skew=SKEW)
    sigv4.parse(received, now=NOW - SKEW, skew=SKEW)
    with pytest.raises(
        errors.AwsError,
        match="Signature expired: 20261127T010203Z is now "
        r"earlier than 20261127T010204Z \(20261127T010704Z - 5 min\.\)",
    ):
        sigv4.parse(received, now=NOW + SKEW + timedelta(seconds=1), skew=SKEW)


def test_the_claimed_key_id_is_read_without_trusting_the_header():
    received = as_received(botocore_signed("http://localhost:8000/"))
    assert sigv4.claimed_key_id(received) == KEY_ID
    odd = sigv4.SignedRequest("POST", "/", "", {"authorization": "AWS4 Credential=<b>/x"}, b"")
    assert sigv4.claimed_key_id(odd) == ""


@settings(max_examples=60, deadline=None)
@given(
    headers=st.dictionaries(
        st.from_regex(r"x-[a-z0-9-]{1,12}", fullmatch=True),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
        max_size=5,
    ),
    body=st.binary(max_size=200),
    params=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=4),
)
def test_any_botocore_signature_round_trips(headers, body, params):
    request = botocore_signed("http://localhost:8000/", body, headers=headers, params=params)
    assert verifies(as_received(request))


AUTHORIZATION = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda algorithm, credential, signed, signature: (
            f"{algorithm} Credential={credential}, SignedHeaders={signed}, Signature={signature}"
        ),
        st.sampled_from(["AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", "AWS4", ""]),
        st.one_of(
            st.text(max_size=60),
            st.builds(
                "/".join,
                st.lists(st.text(min_size=0, max_size=20), min_size=0, max_size=6),
            ),
            st.just(f"{KEY_ID}/20261127/eu-west-1/ssm/aws4_request"),
        ),
        st.one_of(st.text(max_size=40), st.just("content-type;host;x-amz-date;x-amz-target")),
        st.one_of(st.text(max_size=70), st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    authorization=AUTHORIZATION,
    amz_date=st.one_of(st.text(max_size=20), st.just("20261127T010203Z")),
    query=st.text(max_size=40),
    extra=st.dictionaries(
        st.sampled_from(
            ["host", "x-amz-target", "x-amz-security-token", "x-amz-content-sha256", "content-type"]
        ),
        st.text(max_size=20),
    ),
)
def test_any_authorization_header_is_refused_with_an_aws_error_or_parsed(
    authorization, amz_date, query, extra
):
    headers = {"authorization": authorization, "x-amz-date": amz_date, **extra}
    request = sigv4.SignedRequest("POST", "/", query, headers, b"{}")
    try:
        signature = sigv4.parse(request, now=NOW, skew=SKEW)
    except errors.AwsError as error:
        assert error.status == 400 and error.message
        return
    with pytest.raises(errors.AwsError):
        sigv4.verify(request, signature, secret=SECRET)
