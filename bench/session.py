"""Session Manager: keystroke echo latency and `cat` throughput through the relay, with a real
agent, against the same loops over a raw local PTY (issue 7, "Performance (benchmarks)").

The stack (bench/_session_stack.py): the production roles as shipped on a throwaway PostgreSQL
database and the local Redis (the channel layer), behind nginx with deploy/nginx's routing on
one port, and a real `bosun-agent` on this machine, registered through an activation. One
session (started with session_start for the admin, as the e2e tests do) carries everything;
the client (bench/_session_client.py) signs in with the admin's password and speaks the
browser's protocol, acking each output frame as it "renders" it.

1. Echo latency: in the session, `stty raw -echo; dd bs=1 count=N` (a `cat` that ends after N
   bytes, so each byte echoes as it arrives and the shell comes back); keys are typed one at a
   time, each timed from its send until its echo arrives, SAMPLES of them after WARMUP. The
   baseline is the same loop on a local PTY (pty.openpty) running the same command. Reported:
   p50/p99 of both, and the added latency (the session's percentile less the PTY's).
2. Throughput: `cat` of a 100 MB file of random printable ASCII with newlines (made once per
   run), timed from the command's send until an end marker the shell prints after it, RUNS
   times (median); the baseline is `cat` of the file on a local PTY read by the same loop.
   Server RSS (the four roles' process trees, from /proc) sampled every 100 ms during the runs:
   before, after and peak.
3. The recording: after the session is terminated and its recording sealed, the "o" events'
   data of its chunks (read from PostgreSQL), concatenated and encoded UTF-8, must hash
   (SHA-256) the same as every output byte the client received in the session.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import _fleet_stack, _procfs, _session_client, _session_stack
from bench._session_client import LocalPty, Terminal

SAMPLES = 1000
WARMUP = 50
RUNS = 3
FILE_BYTES = 100_000_000
LINE_BYTES = 100  # 99 printable characters and a newline
MB = 1_000_000
MIB = 1024 * 1024
RSS_SAMPLE_SECONDS = 0.1
SETTLE_SECONDS = 1.0
CAT_TIMEOUT = 300.0
TARGET_ADDED_P50_MS = 2.0
TARGET_ADDED_P99_MS = 10.0
TARGET_MB_PER_SECOND = 30.0
TARGET_RSS_GROWTH_MB = 64.0
LATENCY_COMMAND = "stty raw -echo; dd bs=1 count={count} status=none"


def run() -> dict:
    started = time.monotonic()
    samples = int(os.environ.get("BOSUN_BENCH_SESSION_SAMPLES") or SAMPLES)
    runs = int(os.environ.get("BOSUN_BENCH_SESSION_RUNS") or RUNS)
    size = int(os.environ.get("BOSUN_BENCH_SESSION_FILE_BYTES") or FILE_BYTES)
    with tempfile.TemporaryDirectory(prefix="bosun-bench-session-") as scratch:
        path = Path(scratch) / "flood.txt"
        _make_file(path, size)
        print("session: baseline on a local PTY…", flush=True)
        baseline = asyncio.run(_baseline(path, samples, runs))
        print("session: starting the stack…", flush=True)
        with _session_stack.session_stack() as stack:
            print(f"session: stack at {stack.url}; agent {stack.agent.node_id}", flush=True)
            relayed = _relayed(stack, path, samples, runs)
    latency = _latency(relayed["latencies"], baseline["latencies"])
    throughput = _throughput(relayed["throughputs"], baseline["throughputs"], size)
    memory = relayed["memory"]
    recording = relayed["recording"]
    met = {
        "added_latency_p50": latency["added_ms"]["p50"] < TARGET_ADDED_P50_MS,
        "added_latency_p99": latency["added_ms"]["p99"] < TARGET_ADDED_P99_MS,
        "throughput": throughput["session_mb_per_second"]["median"] >= TARGET_MB_PER_SECOND,
        "server_rss_growth": memory["growth_mb"] < TARGET_RSS_GROWTH_MB,
        "recording_identical": recording["identical"],
    }
    return {
        "stack": _session_stack.STACK_DESCRIPTION,
        "deviations_from_defaults": [
            "BOSUN_SESSION_ALLOW_ROOT=1: the agent runs as root on this machine, and a "
            "session's shell is the agent's own user's",
            "nginx without TLS (plain HTTP on 127.0.0.1), so BOSUN_SECURE_PROXY is unset; "
            "Host passed as $http_host (the port is not the default)",
            "one ws process (deploy/nginx lists two): the browser's and the agent's session "
            "sockets share it",
        ],
        "method": {
            "client": (
                "websockets (asyncio) speaking the browser protocol, signed in with the admin's "
                "password through the login form; each output frame acked once appended"
            ),
            "latency": (
                f"{samples} keys after {WARMUP} warm-up ones, each timed from send to echo, "
                f"{_session_client.KEY_GAP_SECONDS * 1000:g} ms apart; the program: "
                f"`{LATENCY_COMMAND.format(count='N')}` (each byte echoed as read); the same "
                "loop and program on a local PTY (pty.openpty) as the baseline; added = the "
                "session's percentile less the PTY's"
            ),
            "throughput": (
                f"`cat` of a {size / MB:g} MB file (random printable ASCII, lines of "
                f"{LINE_BYTES} bytes), from the command's send until the marker the shell "
                f"prints after it; {runs} runs, median; MB = 10^6 bytes of the file (the PTY "
                "adds a CR per line); baseline: `cat` of the file on a local PTY, read by the "
                "same event loop"
            ),
            "memory": (
                "RSS of the four roles' process trees (web, ws, worker, beat) from /proc, every "
                f"{RSS_SAMPLE_SECONDS * 1000:g} ms from before the first run until "
                f"{SETTLE_SECONDS:g} s after the last; growth = peak - before"
            ),
            "recording": (
                "after terminate and the seal: the chunks' 'o' events' data from PostgreSQL, "
                "concatenated and encoded UTF-8, against every output byte the client received"
            ),
        },
        "latency": latency,
        "throughput": throughput,
        "memory": memory,
        "recording": recording,
        "session": relayed["session"],
        "target": {
            "added_latency_p50_ms_below": TARGET_ADDED_P50_MS,
            "added_latency_p99_ms_below": TARGET_ADDED_P99_MS,
            "throughput_mb_per_second_at_least": TARGET_MB_PER_SECOND,
            "server_rss_growth_mb_below": TARGET_RSS_GROWTH_MB,
            "recording": "identical SHA-256",
        },
        "targets_met": met,
        "target_met": all(met.values()),
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }


def summary(result: dict) -> str:
    latency, throughput = result["latency"], result["throughput"]
    memory, recording = result["memory"], result["recording"]
    missed = [name for name, ok in result["targets_met"].items() if not ok]
    return (
        f"echo p50 {latency['session_ms']['p50']} ms p99 {latency['session_ms']['p99']} ms "
        f"(PTY {latency['pty_ms']['p50']}/{latency['pty_ms']['p99']}; added "
        f"{latency['added_ms']['p50']}/{latency['added_ms']['p99']} ms); cat "
        f"{throughput['session_mb_per_second']['median']} MB/s (PTY "
        f"{throughput['pty_mb_per_second']['median']}); server RSS +"
        f"{memory['growth_mb']} MB (peak {memory['peak_mb']}); recording "
        + ("identical" if recording["identical"] else "DIFFERS")
        + "; "
        + ("targets met" if not missed else f"MISSED: {', '.join(missed)}")
    )


# The file.


def _make_file(path: Path, size: int) -> None:
    """Random printable ASCII (space to tilde) in lines of LINE_BYTES, `size` bytes in all."""
    table = bytes(32 + value % 95 for value in range(256))
    width = LINE_BYTES - 1
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MIB) // LINE_BYTES * width or left).translate(table)
            lines = [block[i : i + width] + b"\n" for i in range(0, len(block), width)]
            data = b"".join(lines)[:left]
            out.write(data)
            left -= len(data)


# The baseline: a local PTY.


async def _baseline(path: Path, samples: int, runs: int) -> dict[str, Any]:
    local = LocalPty(["sh", "-c", f"stty raw -echo; echo READY; {_dd(samples)}"])
    try:
        await local.output.until(b"READY", 0, 10)
        latencies = await _session_client.echo_latencies(local, samples, WARMUP)
    finally:
        local.close()
    throughputs = []
    for _ in range(runs):
        cat = LocalPty(["cat", str(path)])
        try:
            started = time.perf_counter()
            await asyncio.wait_for(cat.eof.wait(), CAT_TIMEOUT)
            throughputs.append(
                {"seconds": time.perf_counter() - started, "bytes": len(cat.output.data)}
            )
        finally:
            cat.close()
    return {"latencies": latencies, "throughputs": throughputs}


def _dd(samples: int) -> str:
    return LATENCY_COMMAND.format(count=samples + WARMUP)


# Through the session.


class RssSampler(threading.Thread):
    """The server's RSS every RSS_SAMPLE_SECONDS, from /proc, while it runs."""

    def __init__(self, stack: _session_stack.SessionStack) -> None:
        super().__init__(daemon=True)
        self.roots = list(stack.roles.pids().values())
        self.samples: list[int] = []
        self._halt = threading.Event()

    def rss(self) -> int:
        return sum(_fleet_stack._rss_bytes(pid) for pid in _procfs.tree_pids(self.roots))

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(self.rss())
            self._halt.wait(RSS_SAMPLE_SECONDS)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _relayed(
    stack: _session_stack.SessionStack, path: Path, samples: int, runs: int
) -> dict[str, Any]:
    session_id = stack.start_session()
    print(f"session: session {session_id}", flush=True)
    sampler = RssSampler(stack)
    measured = asyncio.run(_in_session(stack, session_id, path, samples, runs, sampler))
    deadline = time.monotonic() + 60
    row = stack.session_row(session_id)
    while not row["sealed"] and time.monotonic() < deadline:
        time.sleep(0.2)
        row = stack.session_row(session_id)
    recorded, chunks = stack.recording_output(session_id)
    received = measured.pop("received")
    recording = {
        "received_bytes": len(received),
        "recorded_output_bytes": len(recorded),
        "received_sha256": hashlib.sha256(received).hexdigest(),
        "recorded_sha256": hashlib.sha256(recorded).hexdigest(),
        "chunks": chunks,
        "sealed": row["sealed"],
    }
    recording["identical"] = recording["received_sha256"] == recording["recorded_sha256"]
    measured["recording"] = recording
    measured["session"] = {
        "session_id": session_id,
        "status": row["status"],
        "end_reason": row["end_reason"],
        "bytes_out": row["bytes_out"],
    }
    return measured


async def _in_session(
    stack: _session_stack.SessionStack,
    session_id: str,
    path: Path,
    samples: int,
    runs: int,
    sampler: RssSampler,
) -> dict[str, Any]:
    terminal = Terminal(stack.url, stack.cookie, session_id)
    await terminal.open()
    output = terminal.output
    try:
        await _quiet(terminal)
        print("session: echo latency…", flush=True)
        await terminal.type(
            f'stty raw -echo; echo RE""ADY; {_dd(samples)}; stty sane; echo LAT""DONE\r'.encode()
        )
        mark = await output.until(b"READY", 0, 30)
        latencies = await _session_client.echo_latencies(terminal, samples, WARMUP)
        await output.until(b"LATDONE", mark, 30)
        await _quiet(terminal)
        print("session: throughput…", flush=True)
        before = sampler.rss()
        rss_by_role_before = stack.rss_by_role_mb()
        sampler.start()
        throughputs = []
        for index in range(runs):
            # The marker holds bytes the file cannot (it is printable ASCII), and the echoed
            # command line does not hold the marker.
            marker = f"\x01END{index}\x01".encode()
            command = f"cat {path}; printf '\\001END{index}\\001'\r".encode()
            start = len(output.data)
            started = time.perf_counter()
            await terminal.type(command)
            end = await output.until(marker, start, CAT_TIMEOUT)
            seconds = time.perf_counter() - started
            throughputs.append({"seconds": seconds, "bytes": end - start})
            print(f"session: run {index + 1}: {seconds:.2f} s", flush=True)
            await _quiet(terminal)
        await asyncio.sleep(SETTLE_SECONDS)
        sampler.stop()
        after = sampler.rss()
        rss_by_role_after = stack.rss_by_role_mb()
        await terminal.terminate()
    finally:
        await terminal.close()
    peak = max([before, after, *sampler.samples])
    return {
        "latencies": latencies,
        "throughputs": throughputs,
        "memory": {
            "before_mb": round(before / MIB, 1),
            "after_mb": round(after / MIB, 1),
            "peak_mb": round(peak / MIB, 1),
            "growth_mb": round((peak - before) / MIB, 1),
            "samples": len(sampler.samples),
            "by_role_before_mb": rss_by_role_before,
            "by_role_after_mb": rss_by_role_after,
            "unit": "MiB",
        },
        "received": bytes(output.data),
    }


async def _quiet(terminal: Terminal, seconds: float = 0.5, timeout: float = 30) -> None:
    """Until the terminal's output has been still for `seconds` (a prompt drawn)."""
    deadline = time.monotonic() + timeout
    length = -1
    while len(terminal.output.data) != length and time.monotonic() < deadline:
        length = len(terminal.output.data)
        await asyncio.sleep(seconds)


# Figures.


def _ms(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def _latency(session: list[float], local: list[float]) -> dict[str, Any]:
    def figures(values: list[float]) -> dict[str, float]:
        return {
            "p50": round(_ms(values, 0.50), 3),
            "p90": round(_ms(values, 0.90), 3),
            "p99": round(_ms(values, 0.99), 3),
            "max": round(max(values) * 1000, 3),
            "mean": round(statistics.fmean(values) * 1000, 3),
        }

    relayed, pty_alone = figures(session), figures(local)
    return {
        "samples": len(session),
        "session_ms": relayed,
        "pty_ms": pty_alone,
        "added_ms": {key: round(relayed[key] - pty_alone[key], 3) for key in ("p50", "p90", "p99")},
    }


def _throughput(session: list[dict], local: list[dict], size: int) -> dict[str, Any]:
    def rates(runs: list[dict]) -> list[float]:
        return [round(size / MB / run["seconds"], 1) for run in runs]

    relayed, pty_alone = rates(session), rates(local)
    return {
        "file_bytes": size,
        "session_mb_per_second": {"median": statistics.median(relayed), "runs": relayed},
        "pty_mb_per_second": {"median": statistics.median(pty_alone), "runs": pty_alone},
        "session_runs": [
            {"seconds": round(run["seconds"], 3), "bytes_received": run["bytes"]} for run in session
        ],
        "pty_runs": [
            {"seconds": round(run["seconds"], 3), "bytes_received": run["bytes"]} for run in local
        ],
    }
