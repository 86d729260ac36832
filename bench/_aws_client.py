"""One client process of bench/aws.py: reads one parameter as fast as it can, one at a time.

`python -m bench._aws_client KIND --url URL --name NAME --seconds S` with the access key in
`BENCH_AWS_KEY_ID` / `BENCH_AWS_SECRET` and the value the read must return in `BENCH_AWS_VALUE`.
KIND is how the read is made:

- `boto3`: `boto3.client("ssm").get_parameter(Name=…, WithDecryption=True)`, as an SDK user
  would (retries off, so a failure counts once);
- `sigv4`: the same AWS request (JSON 1.1, `X-Amz-Target: AmazonSSM.GetParameter`) signed with
  botocore's `SigV4Auth` and sent with `http.client`, keeping the connection when the server
  does: the AWS face without most of the SDK's client-side cost;
- `rest`: `GET /api/v1/parameters/value/?name=…&decrypt=true` with `Authorization: Bearer`,
  through the same `http.client` path: the REST face, measured the way `sigv4` is.

The process makes one read to check the answer, prints `ready` and waits for a line on stdin:
the wall-clock time (epoch seconds) the measured window starts. Until then it warms up (reads,
unmeasured); from then it times every read for S seconds, prints one JSON line with the
latencies and its own CPU time in the window, then waits for one more line (so the caller can
read its CPU from /proc until the window's end) and exits.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable

REGION = "us-east-1"
REST_ENDPOINT = "/api/v1/parameters/value/"


def _boto3_reader(url: str, name: str, key_id: str, secret: str) -> Callable[[], str]:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "ssm",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )

    def read() -> str:
        return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]

    return read


class _Connection:
    """One HTTP/1.1 connection, kept while the server keeps it (gunicorn's sync workers close
    every one, so against the `web` role each request opens a new one, as boto3's pool does)."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.connection: http.client.HTTPConnection | None = None
        self.opened = 0

    def request(self, method: str, path: str, body: bytes | None, headers: dict) -> bytes:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self.opened += 1
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {raw[:300]!r}")
        return raw

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _sigv4_reader(url: str, name: str, key_id: str, secret: str) -> Callable[[], str]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signer = SigV4Auth(Credentials(key_id, secret), "ssm", REGION)
    endpoint = url.rstrip("/") + "/"
    body = json.dumps({"Name": name, "WithDecryption": True}).encode()
    connection = _Connection(url)

    def read() -> str:
        request = AWSRequest(
            method="POST",
            url=endpoint,
            data=body,
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "AmazonSSM.GetParameter",
            },
        )
        signer.add_auth(request)  # stamps X-Amz-Date now and signs host, date, target, body
        raw = connection.request("POST", "/", body, dict(request.headers.items()))
        return json.loads(raw)["Parameter"]["Value"]

    return read


def _rest_reader(url: str, name: str, key_id: str, secret: str) -> Callable[[], str]:
    path = f"{REST_ENDPOINT}?{urllib.parse.urlencode({'name': name, 'decrypt': 'true'})}"
    headers = {"Authorization": f"Bearer {key_id}:{secret}"}
    connection = _Connection(url)

    def read() -> str:
        answer = json.loads(connection.request("GET", path, None, headers))
        if "value" in answer:
            return answer["value"]
        return (answer.get("parameter") or {}).get("value")

    return read


READERS = {"boto3": _boto3_reader, "sigv4": _sigv4_reader, "rest": _rest_reader}


def _measure(read: Callable[[], str], expected: str, *, start_at: float, seconds: float) -> dict:
    warmup = failed_warmup = 0
    while time.time() < start_at:
        try:
            read()
            warmup += 1
        except Exception:
            failed_warmup += 1
    latencies: list[float] = []
    failed = 0
    first_error = ""
    cpu_before = time.process_time()
    began = time.perf_counter()
    deadline = began + seconds
    now = began
    while now < deadline:
        try:
            value = read()
            if value != expected:
                raise RuntimeError(f"read {value!r}, not the parameter's value")
        except Exception as error:
            failed += 1
            first_error = first_error or f"{type(error).__name__}: {str(error)[:300]}"
            now = time.perf_counter()
            continue
        done = time.perf_counter()
        latencies.append(done - now)
        now = done
    elapsed = time.perf_counter() - began
    return {
        "answered": len(latencies),
        "failed": failed,
        "first_error": first_error,
        "seconds": round(elapsed, 3),
        "cpu_seconds": round(time.process_time() - cpu_before, 3),
        "warmup_reads": warmup,
        "warmup_failed": failed_warmup,
        "latencies_ms": [round(s * 1000, 3) for s in latencies],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._aws_client")
    parser.add_argument("kind", choices=sorted(READERS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    key_id, secret = os.environ["BENCH_AWS_KEY_ID"], os.environ["BENCH_AWS_SECRET"]
    expected = os.environ["BENCH_AWS_VALUE"]
    read = READERS[args.kind](args.url, args.name, key_id, secret)
    value = read()  # a wrong answer stops the run before anything is timed
    if value != expected:
        raise SystemExit(f"{args.kind}: {args.name} read {value!r}, not the value put")
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    figures = _measure(read, expected, start_at=start_at, seconds=args.seconds)
    print(json.dumps({"kind": args.kind, "pid": os.getpid(), **figures}), flush=True)
    sys.stdin.readline()  # the caller has read our CPU for the window
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
