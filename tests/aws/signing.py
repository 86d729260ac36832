"""Raw SigV4 requests for the gateway's tests: signed by botocore's own signer, sent by
http.client exactly as built (any Host, any extra header, any body), answers read raw.

`sign()` returns the headers botocore would send; tests then tamper with them or the body
before `send()`. The clock is botocore's (`get_current_datetime`), set to the moment asked.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "eu-west-1"
CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lowercase names
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def code(self) -> str:
        return self.json.get("__type", "")

    @property
    def message(self) -> str:
        return self.json.get("message", "")


def sign(
    url: str,
    body: bytes | str = b"{}",
    *,
    key_id: str,
    secret: str,
    target: str | None = "AmazonSSM.GetParameter",
    region: str = REGION,
    service: str = "ssm",
    token: str | None = None,
    headers: dict[str, str] | None = None,
    when: datetime | None = None,
    sign_everything: bool = False,
) -> dict[str, str]:
    """The headers of `POST url` with `body`, signed by botocore as boto3 would sign them
    (plus any `headers` given, signed too). `sign_everything` also signs what botocore leaves
    out (User-Agent, …), as other SDKs may."""
    data = body.encode() if isinstance(body, str) else body
    all_headers = {"Content-Type": CONTENT_TYPE, **(headers or {})}
    if target is not None:
        all_headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=url, data=data, headers=all_headers)
    auth = SigV4Auth(Credentials(key_id, secret, token), service, region)
    blacklist = [] if sign_everything else botocore.auth.SIGNED_HEADERS_BLACKLIST
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=when or datetime.now(UTC)),
        mock.patch("botocore.auth.SIGNED_HEADERS_BLACKLIST", blacklist),
    ):
        auth.add_auth(request)
    signed = dict(request.headers.items())
    # botocore derives Host from the URL when signing: send exactly that.
    signed.setdefault("Host", urlsplit(url).netloc)
    return signed


def send(
    url: str,
    headers: dict[str, str],
    body: bytes | str = b"{}",
    *,
    method: str = "POST",
    path: str | None = None,
) -> Answer:
    """Send the request as given: no header added or changed (Host included)."""
    data = body.encode() if isinstance(body, str) else body
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        target = path if path is not None else (parts.path or "/")
        if parts.query and path is None:
            target += "?" + parts.query
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        sent = {name.lower() for name in headers}
        for name, value in headers.items():
            connection.putheader(name, value)
        if "content-length" not in sent:
            connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        response = connection.getresponse()
        return Answer(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            raw=response.read(),
        )
    finally:
        connection.close()


def call(url: str, body: bytes | str = b"{}", **signing: Any) -> Answer:
    """Sign and send in one step."""
    return send(url, sign(url, body, **signing), body)
