"""Parameter Store on the production stack: value reads, a path walk, key rotation under load.

A throwaway PostgreSQL database (and the local Redis), released as the Procfile does, is seeded
with 10,000 parameters through `parameters.services.parameter_put` (so every SecureString holds
a real ciphertext of the key service) in the hierarchy /app{0..99}/env{0..9}/key{0..9}; every
env's key9 is a SecureString (1,000 of them) and /app0 holds exactly 100 parameters; then
ANALYZE, as autovacuum would on a live server (the local PostgreSQL may run without it). Then the
`web` role (gunicorn, `manage.py serve web`) serves the REST API to an access key of the admin's
(`Authorization: Bearer ID:SECRET`):

1. `GET /api/v1/parameters/value/?name=…&decrypt=true`, loaded by wrk (bench/parameters.lua
   takes the 1,000 SecureString names in turn), and the same without decryption, so the cost
   of opening the value and auditing the read shows. Target: ≥ 2,000 req/s, p99 < 25 ms.
2. A recursive read of /app0 (100 values) as a client walks it: 10 pages of 10, each request
   following the previous page's `next_token`, timed as a whole walk, one walk after another.
   Target: the median walk < 20 ms (without and with decryption reported apart).
3. The read load again while `access.kms.master_key_rotate()` runs, then while a data-key
   rotation and the re-encryption of every SecureString run (each in a Bosun process of its
   own, bench/_parameters_worker.py). Target: no failed read.

For scale, `GET /api/v1/me` on the same server (with the access key, and with a session as
bench/http.py loads it) gives the floor of any authenticated API request on this machine.

Then bench/_parameters_profile.py times the read path inside one Django process (where the time
goes per request, statement by statement) and the what-ifs of bench/_parameters_patches.py; a
server runs the read load under cProfile in its own workers; and the read load is run against a
server with each what-if applied (through GUNICORN_CMD_ARGS, bench/_parameters_gunicorn.py), so
proposals carry measured figures. Each run records the CPU the server, PostgreSQL, wrk and
everything else used: on a shared machine the last says how far to trust the rest. Medians of
several runs; these machines are noisy.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pstats
import resource
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg

from bench import _procfs, _stack
from bench import http as http_bench
from bosun.lib import config as bosun_config

PARAMETERS = 10_000
SECURE_PARAMETERS = 1_000
SEED_PROCESSES = 4  # the puts' time is mostly waiting on PostgreSQL: more writers than cores
WALK_PATH = "/app0"  # exactly 100 parameters, 10 of them SecureStrings
WALK_VALUES = 100
WALKS = {"plain": 200, "decrypted": 100}
VALUE_ENDPOINT = "/api/v1/parameters/value/"
PATH_ENDPOINT = "/api/v1/parameters/path/"
LUA_SCRIPT = Path(__file__).with_suffix(".lua")
THREADS = 2
CONNECTIONS = 32
WARMUP_SECONDS = 3
RUN_SECONDS = 10
RUNS = 3
WHATIF_RUNS = 2
ROTATION_LEAD_SECONDS = 3  # load before the rotation starts
ROTATION_TAIL_SECONDS = 2  # and after it ended
WHATIF_WALKS = 50
# Names from bench/_parameters_patches.py, and SYNC_COMMIT_OFF: the benchmark database's role
# gets `synchronous_commit = off` for that server (every commit, the audit's too, stops waiting
# for the WAL flush; a PostgreSQL crash could lose the last moments of commits).
SYNC_COMMIT_OFF = "db_synchronous_commit_off"
WHATIFS = (
    ("no_decrypt_audit",),
    ("audit_async_commit",),
    (SYNC_COMMIT_OFF,),
    ("cached_access_key",),
    ("no_decrypt_audit", "cached_access_key"),
)

BUSY_MACHINE_CORES = 0.25  # CPU used by others during the reads that makes figures suspect

TARGET_GET_RPS = 2000
TARGET_GET_P99_MS = 25.0
TARGET_WALK_P50_MS = 20.0


def run() -> dict:
    started = time.monotonic()
    wrk = http_bench._wrk()
    with _stack.released() as (env, data_dir, _):
        seeding = _seed(env)
        key = _access_key(env)
        auth = f"Bearer {key['AccessKeyId']}:{key['SecretAccessKey']}"
        names = _secure_names(data_dir)
        load = _Load(wrk, auth=auth, names=names)
        log = data_dir / "web.log"
        with _stack.serving("web", env=env, log_path=log) as base_url:
            server = _server_roots(base_url)
            _check(base_url, auth)
            load.run(base_url, decrypt=True, seconds=WARMUP_SECONDS)
            reads = {
                mode: _measure(load, base_url, server, decrypt=decrypt)
                for mode, decrypt in (("decrypted", True), ("plain", False))
            }
            floors = _floors(load, base_url, server)
            walks = {
                mode: _walks(base_url, auth, server, decrypt=mode == "decrypted", count=count)
                for mode, count in WALKS.items()
            }
            rotations = {
                name: _under_load(load, base_url, server, env, command)
                for name, command in (
                    ("master_key", "rotate-master"),
                    ("data_key_and_reencrypt", "rotate-data-key"),
                )
            }
            verified = _check(base_url, auth)  # every value still opens after both rotations
        server_errors = _stack.error_lines(log)
        profile = _profile(env, auth)
        server_profile = _server_profile(load, env, data_dir)
        whatif = [_whatif(load, env, data_dir, auth, chosen) for chosen in WHATIFS]
        web_workers = bosun_config.load(env, base_dir=_stack.ROOT).web_workers
    return _result(
        seeding=seeding,
        reads=reads,
        floors=floors,
        walks=walks,
        rotations=rotations,
        verified=verified,
        server_errors=server_errors,
        profile=profile,
        server_profile=server_profile,
        whatif=whatif,
        web_workers=web_workers,
        wrk=wrk,
        elapsed=time.monotonic() - started,
    )


def _result(**facts) -> dict:
    reads, walks, rotations = facts["reads"], facts["walks"], facts["rotations"]
    decrypted = reads["decrypted"]["median"]
    get_met = (
        decrypted["requests_per_second"] >= TARGET_GET_RPS
        and decrypted["p99_ms"] < TARGET_GET_P99_MS
        and decrypted["failed"] == 0
    )
    walk_met = {mode: walk["walk_ms"]["p50"] < TARGET_WALK_P50_MS for mode, walk in walks.items()}
    rotation_met = {name: r["load"]["failed"] == 0 for name, r in rotations.items()}
    met = {
        "get_decrypted": get_met,
        "path_walk_plain": walk_met["plain"],
        "path_walk_decrypted": walk_met["decrypted"],
        "rotation_master_key": rotation_met["master_key"],
        "rotation_data_key_and_reencrypt": rotation_met["data_key_and_reencrypt"],
    }
    return {
        "endpoints": {
            "value": f"GET {VALUE_ENDPOINT}?name=<name>&decrypt=true|false",
            "path": f"GET {PATH_ENDPOINT}?path={WALK_PATH}&recursive=true&decrypt=…&next_token=…",
            "authentication": "Authorization: Bearer <AccessKeyId>:<SecretAccessKey> (admin)",
        },
        "stores": (
            "PostgreSQL and Redis on 127.0.0.1; a throwaway database whose role may open "
            f"{_stack.CONNECTION_LIMIT} connections"
        ),
        "web_workers": facts["web_workers"],
        "data": {
            "parameters": PARAMETERS,
            "secure_strings": SECURE_PARAMETERS,
            "hierarchy": "/app{0..99}/env{0..9}/key{0..9}; key9 of every env is a SecureString",
            "seeding": facts["seeding"],
        },
        "load": {
            "tool": http_bench._version(facts["wrk"]),
            "threads": THREADS,
            "connections": CONNECTIONS,
            "warmup_seconds": WARMUP_SECONDS,
            "run_seconds": RUN_SECONDS,
            "runs": RUNS,
            "names": f"the {SECURE_PARAMETERS:,} SecureString names in turn",
        },
        "get_value": reads,
        "decryption_cost": _decryption_cost(reads),
        "floors": facts["floors"],
        "path_walk": walks,
        "rotation_under_load": rotations,
        "values_verified_after_rotations": facts["verified"],
        "server_errors": facts["server_errors"],
        "profile": facts["profile"],
        "server_profile": facts["server_profile"],
        "whatif_under_load": facts["whatif"],
        "targets": {
            "get_decrypted_requests_per_second_at_least": TARGET_GET_RPS,
            "get_decrypted_p99_ms_below": TARGET_GET_P99_MS,
            "path_walk_p50_ms_below": TARGET_WALK_P50_MS,
            "rotation_failed_reads": 0,
        },
        "target_met": {**met, "all": all(met.values())},
        "elapsed_seconds": round(facts["elapsed"], 1),
    }


def summary(result: dict) -> str:
    reads = result["get_value"]
    decrypted, plain = reads["decrypted"]["median"], reads["plain"]["median"]
    walks = result["path_walk"]
    rotations = result["rotation_under_load"]
    met = result["target_met"]

    def verdict(flag: bool) -> str:
        return "met" if flag else "MISSED"

    rotations_met = met["rotation_master_key"] and met["rotation_data_key_and_reencrypt"]

    rotation_text = ", ".join(
        f"{name} {r['rotation']['seconds']} s with {r['load']['failed']} failed of "
        f"{r['load']['answered'] + r['load']['failed']:,} reads"
        for name, r in rotations.items()
    )
    return (
        f"seeded {PARAMETERS:,} in {result['data']['seeding']['seconds']} s; "
        f"get+decrypt {decrypted['requests_per_second']:,.0f} req/s p50 {decrypted['p50_ms']} "
        f"p99 {decrypted['p99_ms']} ms ({verdict(met['get_decrypted'])} ≥ {TARGET_GET_RPS:,}, "
        f"p99 < {TARGET_GET_P99_MS:g}); without decryption {plain['requests_per_second']:,.0f} "
        f"req/s p99 {plain['p99_ms']} ms; floor GET /api/v1/me "
        f"{result['floors']['me_bearer']['median']['requests_per_second']:,.0f} req/s with the "
        f"key, {result['floors']['me_session']['median']['requests_per_second']:,.0f} with a "
        f"session; walk of {WALK_VALUES} values p50 "
        f"{walks['plain']['walk_ms']['p50']} ms plain ({verdict(met['path_walk_plain'])}), "
        f"{walks['decrypted']['walk_ms']['p50']} ms decrypted "
        f"({verdict(met['path_walk_decrypted'])} < {TARGET_WALK_P50_MS:g}); rotations: "
        f"{rotation_text} ({verdict(rotations_met)}) ({result['elapsed_seconds']:.0f} s)"
        + (
            "; WARNING: other processes used "
            f"{decrypted['other_cpu_cores']} cores meanwhile, figures understated"
            if decrypted["other_cpu_cores"] > BUSY_MACHINE_CORES
            else ""
        )
    )


# --- Data --------------------------------------------------------------------------------------


def _worker(env: dict[str, str], *args: str, timeout: float = 900) -> dict:
    done = subprocess.run(
        [_stack.PYTHON, "-m", "bench._parameters_worker", *args],
        cwd=_stack.ROOT, env=env, capture_output=True, text=True, check=False, timeout=timeout,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"bench worker {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return json.loads(lines[-1])


def _seed(env: dict[str, str]) -> dict:
    """PARAMETERS puts split between SEED_PROCESSES processes; timed from spawn to the last."""
    share = -(-PARAMETERS // SEED_PROCESSES)
    started = time.monotonic()
    processes = [
        _spawn_seed(env, start, min(start + share, PARAMETERS))
        for start in range(0, PARAMETERS, share)
    ]
    parts = []
    for process in processes:
        out, err = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise RuntimeError(f"seeding failed ({process.returncode}):\n{err}")
        parts.append(json.loads(out.strip().splitlines()[-1]))
    seconds = time.monotonic() - started
    # The local PostgreSQL may run without autovacuum (this machine's does): without table
    # statistics the planner hash-joins whole tables, e.g. a page of "/" took ~50 ms instead
    # of ~5 ms at 10,000 parameters. A live server's autovacuum would have analyzed by now.
    analyze_started = time.monotonic()
    with psycopg.connect(env["DATABASE_URL"], autocommit=True, connect_timeout=5) as database:
        database.execute("ANALYZE")
        autovacuum = database.execute("SHOW autovacuum").fetchone()[0]
    return {
        "through": "parameters.services.parameter_put (authorized, encrypted, audited)",
        "analyze_seconds": round(time.monotonic() - analyze_started, 2),
        "postgres_autovacuum": autovacuum,
        "processes": SEED_PROCESSES,
        "seconds": round(seconds, 1),
        "puts_per_second": round(PARAMETERS / seconds),
        "put_ms_p50_median": statistics.median(p["put_ms_p50"] for p in parts),
        "seconds_in_puts_per_process": [p["seconds"] for p in parts],
    }


def _spawn_seed(env: dict[str, str], start: int, stop: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            _stack.PYTHON, "-m", "bench._parameters_worker", "seed",
            "--start", str(start), "--stop", str(stop),
        ],
        cwd=_stack.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _access_key(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [_stack.PYTHON, "manage.py", "createaccesskey", "--user", "admin", "--json"],
        cwd=_stack.ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"createaccesskey failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout)


def _secure_names(data_dir: Path) -> Path:
    """The SecureStrings' names, URL-encoded, one a line: what the Lua script reads in turn."""
    path = data_dir / "secure-names.txt"
    names = [
        urllib.parse.quote(f"/app{app}/env{env}/key9", safe="")
        for app in range(100)
        for env in range(10)
    ]
    path.write_text("\n".join(names) + "\n")
    return path


# --- Requests ----------------------------------------------------------------------------------


def _get(base_url: str, path: str, auth: str) -> tuple[int, dict, float]:
    """One GET on a new connection (gunicorn's sync workers close every one), timed."""
    parsed = urllib.parse.urlsplit(base_url)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": auth})
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"raw": raw[:300].decode(errors="replace")}
    return response.status, body, seconds


def _value_url(name: str, *, decrypt: bool) -> str:
    query = urllib.parse.urlencode({"name": name, "decrypt": "true" if decrypt else "false"})
    return f"{VALUE_ENDPOINT}?{query}"


def _check(base_url: str, auth: str) -> dict:
    """Reads by hand first (wrk would count an error page as fast as an answer), and after the
    rotations: a sample of SecureStrings opens to its seeded value, and the path has 100."""
    opened = 0
    for app in range(0, 100, 7):
        for env in (0, 5, 9):
            name = f"/app{app}/env{env}/key9"
            status, body, _ = _get(base_url, _value_url(name, decrypt=True), auth)
            value = _value_of(body)
            index = app * 100 + env * 10 + 9
            if status != 200 or not str(value).startswith(f"secret-{index}-"):
                raise RuntimeError(f"{name} answered {status}: {body!r}")
            opened += 1
    status, body, _ = _get(base_url, _value_url("/app3/env4/key9", decrypt=False), auth)
    if status != 200 or str(_value_of(body)).startswith("secret-"):
        raise RuntimeError(f"a read without decryption answered {status}: {body!r}")
    walk = _walk(base_url, auth, decrypt=True)
    if walk["values"] != WALK_VALUES:
        raise RuntimeError(f"walking {WALK_PATH} gave {walk['values']} values, not {WALK_VALUES}")
    return {"secure_strings_opened": opened, "walk_values": walk["values"]}


def _value_of(body: dict) -> object:
    if "value" in body:
        return body["value"]
    return (body.get("parameter") or {}).get("value")


# --- Load --------------------------------------------------------------------------------------


class _Load:
    def __init__(self, wrk: str, *, auth: str, names: Path) -> None:
        self.wrk, self.auth, self.names = wrk, auth, names

    def argv(self, base_url: str, *, decrypt: bool, seconds: float) -> list[str]:
        suffix = f"&decrypt={'true' if decrypt else 'false'}"
        return [
            self.wrk, f"--threads={THREADS}", f"--connections={CONNECTIONS}",
            f"--duration={seconds}s", f"--script={LUA_SCRIPT}",
            f"--header=Authorization: {self.auth}", base_url + VALUE_ENDPOINT,
            "--", str(self.names), f"{VALUE_ENDPOINT}?name=", suffix,
        ]  # fmt: skip

    def run(self, base_url: str, *, decrypt: bool, seconds: float) -> dict:
        done = subprocess.run(
            self.argv(base_url, decrypt=decrypt, seconds=seconds),
            capture_output=True, text=True, check=False, timeout=seconds + 60,
        )  # fmt: skip
        return http_bench.wrk_figures(done.returncode, done.stdout, done.stderr)

    @contextlib.contextmanager
    def running(self, base_url: str, *, decrypt: bool) -> Iterator[dict]:
        """Load until the block ends (wrk stops and reports on SIGINT); figures land in the
        yielded dict."""
        figures: dict = {}
        process = subprocess.Popen(
            self.argv(base_url, decrypt=decrypt, seconds=3600),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            yield figures
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        figures.update(http_bench.wrk_figures(process.returncode, out, err))


class _Cpu:
    """CPU over a block, as cores busy: the server's tree, PostgreSQL's (every database on it),
    the load generator (our waited-for children, or the live processes `load_generator`
    names), the whole machine, and the rest: whatever else ran meanwhile (another job on a
    shared box), which makes the figures understated."""

    def __init__(self, server: list[int], load_generator: list[int] | None = None) -> None:
        self.server = server
        self.postgres = _postgres_roots()
        self.load_generator = load_generator

    def _load_generator_seconds(self) -> float:
        if self.load_generator is None:
            return _children_cpu_seconds()
        return _procfs.usage(self.load_generator).cpu_seconds

    @contextlib.contextmanager
    def measuring(self) -> Iterator[dict]:
        figures: dict = {}
        server_before = _procfs.usage(self.server).cpu_seconds
        postgres_before = _procfs.usage(self.postgres).cpu_seconds
        children_before = self._load_generator_seconds()
        machine_before = _machine_busy_seconds()
        started = time.monotonic()
        yield figures
        seconds = time.monotonic() - started
        memory = _procfs.usage(self.server)
        spent = {
            "server": memory.cpu_seconds - server_before,
            "postgres": _procfs.usage(self.postgres).cpu_seconds - postgres_before,
            "load_generator": self._load_generator_seconds() - children_before,
            "machine": _machine_busy_seconds() - machine_before,
        }
        spent["other"] = max(
            0.0, spent["machine"] - spent["server"] - spent["postgres"] - spent["load_generator"]
        )
        for name, cpu in spent.items():
            figures[f"{name}_cpu_cores"] = round(cpu / seconds, 2)
        figures["server_rss_mib"] = round(memory.rss_bytes / 2**20, 1)
        figures["server_pss_mib"] = round(memory.pss_bytes / 2**20, 1)
        figures["server_processes"] = memory.processes


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_busy_seconds() -> float:
    """Busy time of every CPU since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _procfs.CLOCK_TICKS


def _measure(
    load: _Load, base_url: str, server: list[int], *, decrypt: bool, runs: int = RUNS
) -> dict:
    cpu = _Cpu(server)
    measured = []
    for _ in range(runs):
        with cpu.measuring() as usage:
            figures = load.run(base_url, decrypt=decrypt, seconds=RUN_SECONDS)
        measured.append({**figures, **usage})
    keys = ("requests_per_second", "p50_ms", "p99_ms", "failed", "server_cpu_cores")
    keys += ("postgres_cpu_cores", "other_cpu_cores", "server_rss_mib")
    return {
        "median": {key: round(statistics.median(run[key] for run in measured), 2) for key in keys},
        "runs": measured,
    }


def _decryption_cost(reads: dict) -> dict:
    decrypted, plain = reads["decrypted"]["median"], reads["plain"]["median"]
    return {
        "throughput_ratio_plain_to_decrypted": round(
            plain["requests_per_second"] / max(decrypted["requests_per_second"], 1), 2
        ),
        "server_cpu_ms_per_request": {
            mode: round(
                1000
                * reads[mode]["median"]["server_cpu_cores"]
                / max(reads[mode]["median"]["requests_per_second"], 1),
                3,
            )
            for mode in ("decrypted", "plain")
        },
    }


def _walk(base_url: str, auth: str, *, decrypt: bool) -> dict:
    token, pages, values, page_seconds = None, 0, 0, []
    started = time.perf_counter()
    while True:
        query = {"path": WALK_PATH, "recursive": "true", "decrypt": str(decrypt).lower()}
        if token:
            query["next_token"] = token
        status, body, seconds = _get(
            base_url, f"{PATH_ENDPOINT}?{urllib.parse.urlencode(query)}", auth
        )
        if status != 200:
            raise RuntimeError(f"a page of {WALK_PATH} answered {status}: {body!r}")
        pages += 1
        values += len(body["parameters"])
        page_seconds.append(seconds)
        token = body.get("next_token")
        if not token:
            break
        if pages > 100:
            raise RuntimeError(f"walking {WALK_PATH} did not end after 100 pages")
    return {
        "seconds": time.perf_counter() - started,
        "pages": pages,
        "values": values,
        "page_seconds": page_seconds,
    }


def _walks(base_url: str, auth: str, server: list[int], *, decrypt: bool, count: int) -> dict:
    for _ in range(5):  # warm-up
        _walk(base_url, auth, decrypt=decrypt)
    with _Cpu(server).measuring() as usage:
        walks = [_walk(base_url, auth, decrypt=decrypt) for _ in range(count)]
    pages = sorted(s for walk in walks for s in walk["page_seconds"])
    first_pages = [walk["page_seconds"][0] for walk in walks]
    return {
        "walks": count,
        "pages_per_walk": walks[0]["pages"],
        "values_per_walk": walks[0]["values"],
        "secure_values_per_walk": 10,
        "walk_ms": _percentiles([walk["seconds"] for walk in walks]),
        "page_ms": _percentiles(pages),
        "first_page_ms_p50": round(statistics.median(first_pages) * 1000, 2),
        "cpu": usage,
    }


def _percentiles(seconds: list[float]) -> dict:
    ordered = sorted(seconds)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000, 2)

    return {"p50": round(statistics.median(ordered) * 1000, 2), "p90": at(0.9), "p99": at(0.99)}


def _under_load(
    load: _Load, base_url: str, server: list[int], env: dict[str, str], command: str
) -> dict:
    """Decrypted reads from before the rotation starts until after it ended."""
    with _Cpu(server).measuring() as usage, load.running(base_url, decrypt=True) as figures:
        time.sleep(ROTATION_LEAD_SECONDS)
        started = time.monotonic()
        rotation = _worker(env, command)
        process_seconds = time.monotonic() - started
        time.sleep(ROTATION_TAIL_SECONDS)
    return {
        "rotation": {**rotation, "process_seconds": round(process_seconds, 2)},
        "load": {**figures, **usage},
    }


# --- The server's processes --------------------------------------------------------------------


def _server_roots(base_url: str) -> list[int]:
    """The gunicorn master serving `base_url` (`serve web` execs it), found in /proc."""
    bind = urllib.parse.urlsplit(base_url).netloc
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gunicorn" in b" ".join(argv) and bind.encode() in argv:
            return [int(entry)]
    return []


def _postgres_roots() -> list[int]:
    """The postmaster (every backend is its child): it serves our requests' queries."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            name = Path(f"/proc/{entry}/comm").read_text().strip()
            parent = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]
            parent_name = Path(f"/proc/{parent}/comm").read_text().strip()
        except (OSError, IndexError):
            continue
        if name in {"postgres", "postmaster"} and parent_name not in {"postgres", "postmaster"}:
            return [int(entry)]
    return []


# --- Floors -----------------------------------------------------------------------------------


def _floors(load: _Load, base_url: str, server: list[int]) -> dict:
    """`GET /api/v1/me` on the same server: what any authenticated API request costs here, with
    the access key (the value reads' authentication) and with a session (bench/http.py's)."""
    session = _stack.sign_in(base_url)
    headers = {
        "me_bearer": f"Authorization: {load.auth}",
        "me_session": f"Cookie: bosun_session={session}",
    }
    floors = {}
    cpu = _Cpu(server)
    for name, header in headers.items():
        runs = []
        for _ in range(RUNS):
            with cpu.measuring() as usage:
                figures = _me_load(load.wrk, base_url, header, seconds=RUN_SECONDS)
            runs.append({**figures, **usage})
        floors[name] = {
            "median": {
                key: statistics.median(run[key] for run in runs)
                for key in ("requests_per_second", "p50_ms", "p99_ms", "failed", "server_cpu_cores")
            },
            "runs": runs,
        }
    return floors


def _me_load(wrk: str, base_url: str, header: str, *, seconds: int) -> dict:
    done = subprocess.run(
        [
            wrk, f"--threads={THREADS}", f"--connections={CONNECTIONS}", f"--duration={seconds}s",
            f"--script={http_bench.LUA_SCRIPT}", f"--header={header}", base_url + "/api/v1/me",
        ],
        capture_output=True, text=True, check=False, timeout=seconds + 60,
    )  # fmt: skip
    return http_bench.wrk_figures(done.returncode, done.stdout, done.stderr)


# --- Profile and what-ifs ----------------------------------------------------------------------


def _profile(env: dict[str, str], auth: str) -> dict:
    """bench/_parameters_profile.py in a process of its own (no server running meanwhile)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    try:
        done = subprocess.run(
            [_stack.PYTHON, "-m", "bench._parameters_profile", "--out", str(out)],
            cwd=_stack.ROOT, env={**env, "BENCH_PARAMETERS_AUTH": auth},
            capture_output=True, text=True, check=False, timeout=1200,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"the profile failed:\n{done.stdout}{done.stderr}")
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def _whatif(
    load: _Load, env: dict[str, str], data_dir: Path, auth: str, names: tuple[str, ...]
) -> dict:
    """The decrypted read load, and plain walks, against a server whose workers apply the
    what-ifs `names`; compare with `get_value.decrypted` and `path_walk.plain`."""
    config = Path(__file__).with_name("_parameters_gunicorn.py")
    patched = {
        **env,
        "GUNICORN_CMD_ARGS": f"--config {config}",
        "BENCH_PARAMETERS_WHATIF": ",".join(name for name in names if name != SYNC_COMMIT_OFF),
    }
    log = data_dir / f"web-whatif-{'-'.join(names)}.log"
    with (
        _role_setting(env, "synchronous_commit", "off", when=SYNC_COMMIT_OFF in names),
        _stack.serving("web", env=patched, log_path=log) as base_url,
    ):
        server = _server_roots(base_url)
        load.run(base_url, decrypt=True, seconds=WARMUP_SECONDS)
        measured = _measure(load, base_url, server, decrypt=True, runs=WHATIF_RUNS)
        walks = _walks(base_url, auth, server, decrypt=False, count=WHATIF_WALKS)
    applied = [line for line in log.read_text().splitlines() if "what-if applied" in line]
    return {
        "whatif": list(names),
        "workers_applied": len(applied),
        "get_decrypted": measured["median"],
        "walk_plain_ms": walks["walk_ms"],
    }


@contextlib.contextmanager
def _role_setting(env: dict[str, str], name: str, value: str, *, when: bool) -> Iterator[None]:
    """`ALTER ROLE … SET name = value` for the benchmark database's role while the block runs
    (new connections only: the server is started inside the block)."""
    if not when:
        yield
        return
    role = urllib.parse.urlsplit(env["DATABASE_URL"]).username
    with psycopg.connect(_stack.POSTGRES_URL, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f"ALTER ROLE {role} SET {name} = {value}")
    try:
        yield
    finally:
        with psycopg.connect(_stack.POSTGRES_URL, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f"ALTER ROLE {role} RESET {name}")


# Inclusive time per request of the read path's steps in the server's own workers (cProfile's
# wall time, so a step that waits, or is preempted on these 2 cores, counts its waiting too).
SERVER_STEPS = (
    ("django/core/handlers/wsgi.py", "__call__", "Django (whole request)"),
    ("rest_framework/views.py", "dispatch", "DRF dispatch"),
    ("access/api/authentication.py", "authenticate", "bearer authentication"),
    ("access/services.py", "access_key_secret", "opening the access key's secret"),
    ("parameters/api/common.py", "query", "query string check"),
    ("parameters/selectors.py", "parameter_get", "parameter_get"),
    ("parameters/selectors.py", "_version_row", "version row query"),
    ("access/kms.py", "value_decrypt_for", "decryption for the caller"),
    ("access/kms.py", "value_decrypt", "kms.value_decrypt (secret and value)"),
    ("access/authorization.py", "record", "audit append"),
    ("rest_framework/serializers.py", "to_representation", "serialization"),
    ("rest_framework/response.py", "rendered_content", "JSON rendering"),
    ("django/db/models/sql/compiler.py", "as_sql", "ORM: compiling SQL, all statements"),
    ("psycopg/cursor.py", "execute", "psycopg: sending and waiting, all statements"),
    ("psycopg_pool/pool.py", "getconn", "pool: taking a connection"),
    ("psycopg_pool/pool.py", "putconn", "pool: giving it back"),
)


def _server_profile(load: _Load, env: dict[str, str], data_dir: Path) -> dict:
    """The decrypted read load against a server whose workers run cProfile around every
    request (bench/_parameters_gunicorn.py), aggregated over the workers."""
    directory = data_dir / "server-profile"
    directory.mkdir()
    config = Path(__file__).with_name("_parameters_gunicorn.py")
    profiled = {
        **env,
        "GUNICORN_CMD_ARGS": f"--config {config}",
        "BENCH_PARAMETERS_PROFILE_DIR": str(directory),
    }
    with _stack.serving("web", env=profiled, log_path=data_dir / "web-profile.log") as base_url:
        load.run(base_url, decrypt=True, seconds=WARMUP_SECONDS)
        figures = load.run(base_url, decrypt=True, seconds=RUN_SECONDS)
    files = sorted(str(path) for path in directory.glob("worker-*.prof"))
    if not files:
        return {"error": "no worker wrote a profile"}
    requests = sum(
        json.loads(path.read_text())["profiled_requests"]
        for path in directory.glob("worker-*.json")
    )
    stats = pstats.Stats(*files).stats  # type: ignore[attr-defined]
    steps = {}
    for suffix, function, label in SERVER_STEPS:
        cumulative = sum(
            values[3]
            for (filename, _, name), values in stats.items()
            if name == function and filename.endswith(suffix)
        )
        steps[label] = round(cumulative * 1000 / max(requests, 1), 2)
    own = sorted(stats.items(), key=lambda item: -item[1][2])[:15]
    return {
        "how": (
            "cProfile in every gunicorn worker around each request (pre_request to "
            "post_request hooks), decrypted reads under the same wrk load; wall time, so "
            "waiting and preemption count; cProfile's own overhead inflates Python-heavy steps"
        ),
        "load": {key: figures[key] for key in ("requests_per_second", "p50_ms", "failed")},
        "profiled_requests": requests,
        "ms_per_request": steps,
        "top_own_time_ms_per_request": {
            f"{_short_path(filename)}:{line}({name})": round(values[2] * 1000 / max(requests, 1), 3)
            for (filename, line, name), values in own
        },
    }


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", f"{_stack.ROOT}/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
