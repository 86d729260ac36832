"""The AWS face's cost: GetParameter (SecureString, decrypted) through SigV4 beside the REST read.

A throwaway PostgreSQL database (and the local Redis), released as the Procfile does; an access
key of the admin's (`manage.py createaccesskey`); the `web` role (gunicorn, `manage.py serve
web`) as shipped, which serves the AWS SSM API on `POST /` (access/aws_endpoint.py) and the REST
API beside it. One SecureString is put through the AWS face (boto3's `put_parameter`), then read
back on both faces, and CLIENT_PROCESSES client processes (bench/_aws_client.py) read it, one
read in flight each, for RUN_SECONDS after a warm-up, timing every read client-side:

1. `aws_boto3`: `boto3.client("ssm").get_parameter(Name=…, WithDecryption=True)`, what an SDK
   user runs. Target: ≥ 1,000 req/s, no failed read (boto3 itself takes ~2 ms of CPU per
   call, so on these 2 shared cores the clients alone would need every core at that rate).
2. `aws_sigv4`: the same request signed with botocore's `SigV4Auth` and sent with `http.client`
   (keeping the connection when the server does; gunicorn's sync workers close every one): the
   AWS face with less client CPU in the way, so the server's capacity shows.
3. `aws_wrk`: wrk (C, a few microseconds of CPU per request) sending one request, signed by
   botocore before each run, again and again (bench/aws.lua, 32 connections). SigV4 has no
   nonce, so the server verifies it in full every time: the server's capacity with almost no
   client in the way, the row to compare with the target.
4. `rest`: `GET /api/v1/parameters/value/?name=…&decrypt=true` with `Authorization: Bearer`,
   through the same `http.client` path: `aws_sigv4` against it is the AWS face's cost.
5. `rest_wrk`: the REST read loaded by wrk (bench/parameters.py's load, 32 connections) on
   this one name, beside `aws_wrk`; bench/results/parameters.json has it for 1,000 different
   SecureStrings.

Why CLIENT_PROCESSES = 4: the `web` role runs 2 x cores = 4 sync gunicorn workers on this
2-core machine and a client process has one read in flight, so 4 clients can keep every worker
busy; fewer leave a worker idle while a client signs and parses; more only queue at the listen
socket, and every client process takes CPU from the server's 2 cores.

The clients run on the same 2 cores as the server and PostgreSQL, so each run records the CPU
of the server, PostgreSQL, the client processes and everything else (bench/parameters.py's
accounting): the server's CPU per read is the comparable figure, and client CPU per read says
how much of the machine boto3 itself took; `ceiling_requests_per_second_all_cores` is what
every core would serve at the server's and PostgreSQL's CPU per read, with no client and no
other job on the machine. Medians of RUNS runs; these machines are noisy.

`BOSUN_BENCH_AWS_SECONDS` (default 10) sets each run's length, `BOSUN_BENCH_AWS_RUNS` (3) the
runs per row and `BOSUN_BENCH_AWS_CLIENTS` (4) the client processes: short trials while
developing, e.g. `BOSUN_BENCH_AWS_SECONDS=3 BOSUN_BENCH_AWS_RUNS=1 make bench NAME=aws`.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import time
import urllib.parse
from pathlib import Path

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from bench import _stack
from bench import http as http_bench
from bench import parameters as parameters_bench
from bosun.lib import config as bosun_config

PARAMETER = "/bench/aws/db-password"
REGION = "us-east-1"
CLIENT_PROCESSES = int(os.environ.get("BOSUN_BENCH_AWS_CLIENTS") or 4)
RUN_SECONDS = int(os.environ.get("BOSUN_BENCH_AWS_SECONDS") or 10)
RUNS = int(os.environ.get("BOSUN_BENCH_AWS_RUNS") or 3)
WARMUP_SECONDS = min(3, RUN_SECONDS)  # opens the database connections, fills the caches
CLIENT_START_TIMEOUT = 60  # importing boto3 in 4 processes at once on a busy 2-core machine
# Rows read by bench/_aws_client.py, and the kind of client each uses.
CLIENT_ROWS = {"aws_boto3": "boto3", "aws_sigv4": "sigv4", "rest": "rest"}
BUSY_MACHINE_CORES = parameters_bench.BUSY_MACHINE_CORES

TARGET_RPS = 1000


def run() -> dict:
    started = time.monotonic()
    wrk = http_bench._wrk()
    with _stack.released() as (env, data_dir, _):
        key = parameters_bench._access_key(env)
        value = f"bench-{secrets.token_urlsafe(24)}"
        log = data_dir / "web.log"
        with _stack.serving("web", env=env, log_path=log) as base_url:
            server = parameters_bench._server_roots(base_url)
            checked = _put_and_check(base_url, key, value)
            reads = {
                row: _measure_clients(kind, base_url, server, key, value, data_dir)
                for row, kind in CLIENT_ROWS.items()
            }
            reads["aws_wrk"] = _measure_aws_wrk(wrk, base_url, server, key, data_dir)
            reads["rest_wrk"] = _measure_wrk(wrk, base_url, server, key, data_dir)
        server_errors = _stack.error_lines(log)
        web_workers = bosun_config.load(env, base_dir=_stack.ROOT).web_workers
    return _result(
        reads=reads,
        checked=checked,
        server_errors=server_errors,
        web_workers=web_workers,
        wrk=wrk,
        elapsed=time.monotonic() - started,
    )


def _result(**facts) -> dict:
    reads = facts["reads"]
    medians = {row: read["median"] for row, read in reads.items()}
    met = {
        row: medians[row]["requests_per_second"] >= TARGET_RPS and medians[row]["failed"] == 0
        for row in ("aws_boto3", "aws_sigv4", "aws_wrk")
    }
    return {
        "operation": f"GetParameter(Name={PARAMETER}, WithDecryption=True), a SecureString",
        "faces": {
            "aws": "POST / (AWS JSON 1.1, X-Amz-Target: AmazonSSM.GetParameter, SigV4 "
            f"scope <date>/{REGION}/ssm/aws4_request)",
            "rest": f"GET {parameters_bench.VALUE_ENDPOINT}?name={PARAMETER}&decrypt=true, "
            "Authorization: Bearer <AccessKeyId>:<SecretAccessKey>",
            "principal": "admin (superuser), one access key",
        },
        "stores": (
            "PostgreSQL and Redis on 127.0.0.1; a throwaway database whose role may open "
            f"{_stack.CONNECTION_LIMIT} connections"
        ),
        "web_workers": facts["web_workers"],
        "load": {
            "client_processes": CLIENT_PROCESSES,
            "why": (
                "one read in flight per process; as many processes as gunicorn sync workers "
                "(2 x cores), so every worker can be busy without a queue at the socket"
            ),
            "warmup_seconds": WARMUP_SECONDS,
            "run_seconds": RUN_SECONDS,
            "runs": RUNS,
            "clients": {
                "aws_boto3": f"boto3 {boto3.__version__} get_parameter, retries off",
                "aws_sigv4": f"botocore {botocore.__version__} SigV4Auth + http.client",
                "rest": "http.client, Bearer access key",
                "aws_wrk": (
                    f"{http_bench._version(facts['wrk'])}, {parameters_bench.THREADS} threads, "
                    f"{parameters_bench.CONNECTIONS} connections, one request signed by botocore "
                    "before each run and sent again (bench/aws.lua): verified in full each time"
                ),
                "rest_wrk": (
                    f"{http_bench._version(facts['wrk'])}, {parameters_bench.THREADS} threads, "
                    f"{parameters_bench.CONNECTIONS} connections"
                ),
            },
            "latency": "client-side, request sent to answer parsed (connect included: "
            "gunicorn's sync workers close every connection)",
        },
        "checked": facts["checked"],
        "get_parameter": reads,
        "aws_face_cost": _face_cost(medians),
        "server_errors": facts["server_errors"],
        "targets": {"requests_per_second_at_least": TARGET_RPS, "failed_reads": 0},
        "target_met": {**met, "all": all(met.values())},
        "elapsed_seconds": round(facts["elapsed"], 1),
    }


def _face_cost(medians: dict) -> dict:
    def ratio(numerator: str, denominator: str) -> float:
        return round(
            medians[numerator]["requests_per_second"]
            / max(medians[denominator]["requests_per_second"], 0.1),
            2,
        )

    return {
        "throughput_ratio_aws_sigv4_to_rest": ratio("aws_sigv4", "rest"),
        "throughput_ratio_aws_boto3_to_rest": ratio("aws_boto3", "rest"),
        "throughput_ratio_aws_wrk_to_rest_wrk": ratio("aws_wrk", "rest_wrk"),
        "server_cpu_ms_per_request": {
            row: median["server_cpu_ms_per_request"] for row, median in medians.items()
        },
        "client_cpu_ms_per_request": {
            row: median["client_cpu_ms_per_request"]
            for row, median in medians.items()
            if row in CLIENT_ROWS
        },
        # What every core of this machine would serve at the server's and PostgreSQL's CPU per
        # read, with no client and nobody else on it: the ceiling the target is measured under.
        "ceiling_requests_per_second_all_cores": {
            row: round(
                (os.cpu_count() or 1)
                * 1000
                / max(
                    median["server_cpu_ms_per_request"]
                    + 1000 * median["postgres_cpu_cores"] / max(median["requests_per_second"], 0.1),
                    0.001,
                )
            )
            for row, median in medians.items()
        },
    }


def summary(result: dict) -> str:
    reads = {row: read["median"] for row, read in result["get_parameter"].items()}
    boto, light, rest, wrk = (reads[r] for r in ("aws_boto3", "aws_sigv4", "rest", "rest_wrk"))
    aws_wrk = reads["aws_wrk"]
    cost = result["aws_face_cost"]["server_cpu_ms_per_request"]
    ceiling = result["aws_face_cost"]["ceiling_requests_per_second_all_cores"]
    met = result["target_met"]
    busy = max(read["other_cpu_cores"] for read in reads.values())

    def verdict(flag: bool) -> str:
        return "met" if flag else "MISSED"

    return (
        f"GetParameter+decrypt, {CLIENT_PROCESSES} client processes: boto3 "
        f"{boto['requests_per_second']:,.0f} req/s p50 {boto['p50_ms']} p99 {boto['p99_ms']} ms "
        f"(clients {boto['load_generator_cpu_cores']} cores; {verdict(met['aws_boto3'])} "
        f"≥ {TARGET_RPS:,}), light SigV4 client {light['requests_per_second']:,.0f} req/s "
        f"p99 {light['p99_ms']} ms ({verdict(met['aws_sigv4'])}), wrk replaying a signed "
        f"request {aws_wrk['requests_per_second']:,.0f} req/s ({verdict(met['aws_wrk'])}); "
        "REST same client "
        f"{rest['requests_per_second']:,.0f} req/s p99 {rest['p99_ms']} ms, wrk "
        f"{wrk['requests_per_second']:,.0f} req/s; AWS/REST throughput (same client) "
        f"{result['aws_face_cost']['throughput_ratio_aws_sigv4_to_rest']}x; server CPU per "
        f"read {cost['aws_sigv4']} ms AWS, {cost['rest']} ms REST (all cores at that: "
        f"~{ceiling['aws_sigv4']:,} req/s AWS) ({result['elapsed_seconds']:.0f} s)"
        + (
            f"; WARNING: other processes used {busy} cores meanwhile, figures understated"
            if busy > BUSY_MACHINE_CORES
            else ""
        )
    )


# --- Setup -------------------------------------------------------------------------------------


def _ssm(base_url: str, key: dict):
    return boto3.client(
        "ssm",
        endpoint_url=base_url,
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1}),
    )


def _put_and_check(base_url: str, key: dict, value: str) -> dict:
    """Put the SecureString through the AWS face, then read it on both faces by hand (a load
    generator would count an error page as fast as an answer)."""
    ssm = _ssm(base_url, key)
    put = ssm.put_parameter(Name=PARAMETER, Value=value, Type="SecureString")
    answer = ssm.get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]
    if answer["Value"] != value or answer["Type"] != "SecureString":
        raise RuntimeError(f"GetParameter answered {answer!r}")
    sealed = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    if sealed == value:
        raise RuntimeError("GetParameter without decryption returned the plaintext")
    auth = f"Bearer {key['AccessKeyId']}:{key['SecretAccessKey']}"
    query = urllib.parse.urlencode({"name": PARAMETER, "decrypt": "true"})
    status, body, _ = parameters_bench._get(
        base_url, f"{parameters_bench.VALUE_ENDPOINT}?{query}", auth
    )
    if status != 200 or parameters_bench._value_of(body) != value:
        raise RuntimeError(f"the REST read answered {status}: {body!r}")
    return {
        "put_through": "AWS PutParameter (boto3)",
        "version": put["Version"],
        "arn": answer["ARN"],
        "aws_decrypted_equals_put": True,
        "aws_plain_is_ciphertext": True,
        "rest_decrypted_equals_put": True,
    }


# --- Client processes --------------------------------------------------------------------------


def _measure_clients(
    kind: str, base_url: str, server: list[int], key: dict, value: str, data_dir: Path
) -> dict:
    measured = [_clients_run(kind, base_url, server, key, value, data_dir) for _ in range(RUNS)]
    return _medians(measured)


def _medians(measured: list[dict]) -> dict:
    keys = ("requests_per_second", "p50_ms", "p90_ms", "p99_ms", "failed")
    keys += ("server_cpu_cores", "postgres_cpu_cores", "load_generator_cpu_cores")
    keys += ("other_cpu_cores", "server_cpu_ms_per_request", "client_cpu_ms_per_request")
    keys += ("server_rss_mib",)
    return {
        "median": {
            key: round(statistics.median(run[key] for run in measured), 2)
            for key in keys
            if all(key in run for run in measured)
        },
        "runs": measured,
    }


def _clients_run(
    kind: str, base_url: str, server: list[int], key: dict, value: str, data_dir: Path
) -> dict:
    """CLIENT_PROCESSES clients of `kind`: started and checked, told when the window starts,
    warmed up until then; the CPU is read over the window itself."""
    env = {
        # The caller's AWS settings (a profile, a global endpoint, retry modes) stay out.
        **{name: set_to for name, set_to in os.environ.items() if not name.startswith("AWS_")},
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "BENCH_AWS_KEY_ID": key["AccessKeyId"],
        "BENCH_AWS_SECRET": key["SecretAccessKey"],
        "BENCH_AWS_VALUE": value,
        "PYTHONUNBUFFERED": "1",
    }
    argv = [
        _stack.PYTHON, "-m", "bench._aws_client", kind, "--url", base_url,
        "--name", PARAMETER, "--seconds", str(RUN_SECONDS),
    ]  # fmt: skip
    errors = data_dir / f"client-{kind}.log"
    processes: list[subprocess.Popen] = []
    try:
        with errors.open("ab") as error_log:
            for _ in range(CLIENT_PROCESSES):
                process = subprocess.Popen(
                    argv, cwd=_stack.ROOT, env=env, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=error_log, text=True,
                )  # fmt: skip
                processes.append(process)
        deadline = time.monotonic() + CLIENT_START_TIMEOUT
        for process in processes:
            _expect_ready(process, errors, deadline)
        start_at = time.time() + WARMUP_SECONDS
        for process in processes:
            _tell(process, f"{start_at}")
        cpu = parameters_bench._Cpu(server, load_generator=[p.pid for p in processes])
        time.sleep(max(0.0, start_at - time.time()))
        with cpu.measuring() as usage:
            time.sleep(RUN_SECONDS)
        outputs = []
        for process in processes:
            line = process.stdout.readline() if process.stdout else ""
            if not line.startswith("{"):
                raise RuntimeError(f"a {kind} client gave no figures:\n{_tail(errors)}")
            outputs.append(json.loads(line))
            _tell(process, "")
        for process in processes:
            process.wait(timeout=30)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return {**_client_figures(outputs), **usage, **_per_request(usage, outputs)}


def _expect_ready(process: subprocess.Popen, errors: Path, deadline: float) -> None:
    # The client prints `ready` after one checked read, or exits with the reason on stderr.
    # readline blocks: a client that hangs would hang us, so the timeout is the caller's
    # deadline for the whole group, checked between clients.
    line = process.stdout.readline() if process.stdout else ""
    if line.strip() != "ready":
        process.wait(timeout=10)
        raise RuntimeError(f"a client did not start ({process.returncode}):\n{_tail(errors)}")
    if time.monotonic() > deadline:
        raise RuntimeError(f"the clients took over {CLIENT_START_TIMEOUT} s to start")


def _tell(process: subprocess.Popen, line: str) -> None:
    if process.stdin:
        process.stdin.write(line + "\n")
        process.stdin.flush()


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _client_figures(outputs: list[dict]) -> dict:
    latencies = sorted(ms for out in outputs for ms in out["latencies_ms"])
    answered = sum(out["answered"] for out in outputs)

    def at(share: float) -> float:
        if not latencies:
            return 0.0
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * share))], 2)

    errors = [out["first_error"] for out in outputs if out["first_error"]]
    return {
        # Each process's reads over its own window, summed: the windows start together.
        "requests_per_second": round(
            sum(out["answered"] / max(out["seconds"], 0.001) for out in outputs), 1
        ),
        "p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
        "max_ms": latencies[-1] if latencies else 0.0,
        "answered": answered,
        "failed": sum(out["failed"] for out in outputs),
        "first_error": errors[0] if errors else "",
        "seconds": max(out["seconds"] for out in outputs),
        "per_process_requests": [out["answered"] for out in outputs],
        "warmup_reads": sum(out["warmup_reads"] for out in outputs),
        "client_cpu_seconds_own": round(sum(out["cpu_seconds"] for out in outputs), 3),
    }


def _per_request(usage: dict, outputs: list[dict]) -> dict:
    answered = max(sum(out["answered"] for out in outputs), 1)
    seconds = max(max(out["seconds"] for out in outputs), 0.001)
    return {
        "server_cpu_ms_per_request": round(
            1000 * usage["server_cpu_cores"] * seconds / answered, 3
        ),
        # The clients' own account (process_time over their window), not /proc's rounding.
        "client_cpu_ms_per_request": round(
            1000 * sum(out["cpu_seconds"] for out in outputs) / answered, 3
        ),
    }


# --- wrk ---------------------------------------------------------------------------------------

AWS_LUA_SCRIPT = Path(__file__).with_suffix(".lua")


def _measure_aws_wrk(wrk: str, base_url: str, server: list[int], key: dict, data_dir: Path) -> dict:
    """The AWS read with the cheapest client there is: wrk sends one signed request again and
    again (bench/aws.lua), so nearly all the machine's CPU is the server's and PostgreSQL's.
    Signed afresh before each run: a signature is good for AWS's 5 minutes of skew."""
    _aws_wrk_run(wrk, base_url, key, data_dir, seconds=WARMUP_SECONDS)
    cpu = parameters_bench._Cpu(server)
    measured = []
    for _ in range(RUNS):
        with cpu.measuring() as usage:
            figures = _aws_wrk_run(wrk, base_url, key, data_dir, seconds=RUN_SECONDS)
        rps = max(figures["requests_per_second"], 0.1)
        measured.append(
            {
                **figures,
                **usage,
                "server_cpu_ms_per_request": round(1000 * usage["server_cpu_cores"] / rps, 3),
            }
        )
    return _medians(measured)


def _aws_wrk_run(wrk: str, base_url: str, key: dict, data_dir: Path, *, seconds: float) -> dict:
    body = json.dumps({"Name": PARAMETER, "WithDecryption": True}).encode()
    request = AWSRequest(
        method="POST",
        url=base_url + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonSSM.GetParameter",
        },
    )
    credentials = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    SigV4Auth(credentials, "ssm", REGION).add_auth(request)
    body_file = data_dir / "aws-wrk-body.json"
    body_file.write_bytes(body)
    # wrk sends Host as host:port from the URL, which is what botocore signed.
    headers = [f"--header={name}: {value}" for name, value in request.headers.items()]
    done = subprocess.run(
        [
            wrk, f"--threads={parameters_bench.THREADS}",
            f"--connections={parameters_bench.CONNECTIONS}", f"--duration={seconds}s",
            f"--script={AWS_LUA_SCRIPT}", *headers, base_url + "/", "--", str(body_file),
        ],
        capture_output=True, text=True, check=False, timeout=seconds + 60,
    )  # fmt: skip
    return http_bench.wrk_figures(done.returncode, done.stdout, done.stderr)


def _measure_wrk(wrk: str, base_url: str, server: list[int], key: dict, data_dir: Path) -> dict:
    """bench/parameters.py's wrk load on the one name, for its figures' sake."""
    names = data_dir / "aws-names.txt"
    names.write_text(urllib.parse.quote(PARAMETER, safe="") + "\n")
    auth = f"Bearer {key['AccessKeyId']}:{key['SecretAccessKey']}"
    load = parameters_bench._Load(wrk, auth=auth, names=names)
    load.run(base_url, decrypt=True, seconds=WARMUP_SECONDS)
    cpu = parameters_bench._Cpu(server)
    measured = []
    for _ in range(RUNS):
        with cpu.measuring() as usage:
            figures = load.run(base_url, decrypt=True, seconds=RUN_SECONDS)
        rps = max(figures["requests_per_second"], 0.1)
        measured.append(
            {
                **figures,
                **usage,
                "server_cpu_ms_per_request": round(1000 * usage["server_cpu_cores"] / rps, 3),
            }
        )
    return _medians(measured)
