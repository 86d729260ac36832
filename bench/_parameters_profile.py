"""Where a decrypted read's time goes, inside one Bosun process (run by bench/parameters.py).

`python -m bench._parameters_profile --out FILE` against the benchmark's seeded database
(its environment, plus BENCH_PARAMETERS_AUTH: the `Bearer ID:SECRET` header value). Requests
go through Django's test client: the whole middleware stack, DRF, the view, the selector, the
key service and the audit append, as in a gunicorn worker, less the WSGI server and the
socket. One request at a time, so these are costs, not contention.

1. `loops`: the mean time of a decrypted read and of a plain one, and of a walk of /app0.
2. `breakdown`: each of those again with named steps timed (inclusive, nested, per request)
   and every SQL statement counted and timed under the innermost step running it.
3. `cprofile` (run before 2): the functions with the most cumulative time, from cProfile.
4. `whatif` (run before 2): the decrypted read's mean and a plain walk's median with each
   what-if of bench/_parameters_patches.py, in turn, round after round, beside the baseline.
5. `query_costs`: the read's two statements through the ORM and as plain SQL.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import statistics
import sys
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")
django.setup()

# Django must be configured before these imports.
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

LOOP_REQUESTS = 1500
LOOP_WALKS = 100
QUERY_REPEATS = 1000
WHATIF_ROUNDS = 6
WHATIF_REQUESTS = 150  # per what-if and round
WHATIF_WALKS = 4  # per what-if and round
TRACE_REQUESTS = 1000
TRACE_WALKS = 50
WALK_PATH = "/app0"
PROFILE_REQUESTS = 500
WARMUP_REQUESTS = 100
WHATIFS = (
    (),
    ("no_decrypt_audit",),
    ("audit_async_commit",),
    ("cached_access_key",),
    ("no_decrypt_audit", "cached_access_key"),
)


def _urls(*, decrypt: bool) -> list[str]:
    flag = "true" if decrypt else "false"
    return [
        f"/api/v1/parameters/value/?name={urllib.parse.quote(f'/app{app}/env{env}/key9', safe='')}"
        f"&decrypt={flag}"
        for app in range(100)
        for env in range(10)
    ]


def _client() -> Client:
    host = os.environ.get("BOSUN_HOST", "127.0.0.1")
    return Client(HTTP_AUTHORIZATION=os.environ["BENCH_PARAMETERS_AUTH"], HTTP_HOST=host)


def _requests(client: Client, urls: list[str], count: int, offset: int = 0) -> list[float]:
    seconds = []
    for index in range(count):
        url = urls[(offset + index) % len(urls)]
        started = time.perf_counter()
        response = client.get(url)
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.content[:300]}")
    return seconds


def _summary(seconds: list[float]) -> dict:
    return {
        "requests": len(seconds),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 3),
        "p50_ms": round(statistics.median(seconds) * 1000, 3),
        "requests_per_second_one_process": round(len(seconds) / sum(seconds), 1),
    }


def _walk(client: Client, *, decrypt: bool) -> list[float]:
    """One recursive read of /app0 (10 pages), following next_token; each page's time."""
    token, seconds = None, []
    while True:
        query = {"path": WALK_PATH, "recursive": "true", "decrypt": "true" if decrypt else "false"}
        if token:
            query["next_token"] = token
        started = time.perf_counter()
        response = client.get(f"/api/v1/parameters/path/?{urllib.parse.urlencode(query)}")
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"a page answered {response.status_code}: {response.content[:300]}")
        token = response.json().get("next_token")
        if not token:
            return seconds


def _walks(client: Client, count: int, *, decrypt: bool) -> list[float]:
    """Every page's time over `count` walks."""
    return [page for _ in range(count) for page in _walk(client, decrypt=decrypt)]


def loops(client: Client) -> dict:
    decrypted, plain = _urls(decrypt=True), _urls(decrypt=False)
    _requests(client, decrypted, WARMUP_REQUESTS)
    _requests(client, plain, WARMUP_REQUESTS)
    _walks(client, 5, decrypt=True)
    result = {
        "value_decrypted": _summary(_requests(client, decrypted, LOOP_REQUESTS, offset=7)),
        "value_plain": _summary(_requests(client, plain, LOOP_REQUESTS, offset=7)),
    }
    for mode, decrypt in (("walk_plain", False), ("walk_decrypted", True)):
        walks = [sum(_walk(client, decrypt=decrypt)) for _ in range(LOOP_WALKS)]
        result[mode] = {
            "walks": LOOP_WALKS,
            "walk_ms_p50": round(statistics.median(walks) * 1000, 3),
            "page_ms_mean": round(statistics.fmean(walks) * 100, 3),  # 10 pages a walk
        }
    return result


class Tracer:
    """Inclusive time per nested step ("a > b"), and SQL per innermost step."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.sql: dict[str, list] = defaultdict(lambda: [0, 0.0])
        self.statements: dict[str, int] = defaultdict(int)

    def wrap(self, owner: object, attribute: str, label: str) -> None:
        original = getattr(owner, attribute)
        tracer = self

        @functools.wraps(original)
        def timed(*args, **kwargs):
            tracer.stack.append(label)
            path = " > ".join(tracer.stack)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                tracer.seconds[path] += time.perf_counter() - started
                tracer.calls[path] += 1
                tracer.stack.pop()

        setattr(owner, attribute, timed)

    def execute(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            path = " > ".join(self.stack) or "(no step)"
            entry = self.sql[path]
            entry[0] += 1
            entry[1] += time.perf_counter() - started
            self.statements[f"{path} :: {_statement(sql)}"] += 1


def _statement(sql: str) -> str:
    """A statement's gist: its verb and first table."""
    words = sql.replace('"', "").split()
    verb = words[0].upper() if words else "?"
    table = ""
    for marker in ("FROM", "INTO", "UPDATE"):
        if marker in (w.upper() for w in words):
            index = [w.upper() for w in words].index(marker)
            table = words[index + 1] if index + 1 < len(words) else ""
            break
    return f"{verb} {table}".strip()


def _tracer() -> Tracer:
    from rest_framework.renderers import JSONRenderer
    from rest_framework.serializers import Serializer
    from rest_framework.views import APIView

    from access import kms
    from access import services as access_services
    from access.api.authentication import AccessKeyAuthentication
    from access.authorization import Principal
    from bosun.lib import crypto, page_tokens
    from parameters import selectors
    from parameters.api import views as parameter_views

    tracer = Tracer()
    tracer.wrap(APIView, "dispatch", "DRF dispatch")
    tracer.wrap(APIView, "initial", "DRF initial")
    tracer.wrap(AccessKeyAuthentication, "authenticate", "bearer authenticate")
    tracer.wrap(access_services, "access_key_secret", "access_key_secret")
    tracer.wrap(access_services, "access_key_mark_used", "access_key_mark_used")
    tracer.wrap(parameter_views, "query", "query string check")
    tracer.wrap(selectors, "parameter_get", "parameter_get")
    tracer.wrap(selectors, "parameters_by_path", "parameters_by_path")
    tracer.wrap(selectors, "_paged", "page scan")
    tracer.wrap(page_tokens, "token_read", "token read")
    tracer.wrap(page_tokens, "token_make", "token make")
    tracer.wrap(selectors, "_version_row", "version row")
    tracer.wrap(selectors, "_authorize_read", "authorize read")
    tracer.wrap(selectors, "_as_value", "value")
    tracer.wrap(kms, "value_decrypt_for", "value_decrypt_for")
    tracer.wrap(kms, "ciphertext_key", "ciphertext_key")
    tracer.wrap(kms, "authorize", "authorize kms:Decrypt")
    tracer.wrap(kms, "value_decrypt", "kms.value_decrypt")
    tracer.wrap(crypto, "decrypt", "AES-GCM decrypt")
    tracer.wrap(Principal, "record", "audit append")
    tracer.wrap(Serializer, "to_representation", "serialize")
    tracer.wrap(JSONRenderer, "render", "render JSON")
    return tracer


def breakdowns(client: Client) -> dict:
    """Each kind of request traced on its own; the timing wrappers stay on afterwards."""
    tracer = _tracer()
    runs = {
        "value_decrypted": lambda: _requests(client, _urls(decrypt=True), TRACE_REQUESTS, 11),
        "value_plain": lambda: _requests(client, _urls(decrypt=False), TRACE_REQUESTS, 11),
        "path_page_plain": lambda: _walks(client, TRACE_WALKS, decrypt=False),
        "path_page_decrypted": lambda: _walks(client, TRACE_WALKS, decrypt=True),
    }
    _requests(client, _urls(decrypt=True), WARMUP_REQUESTS)
    _walks(client, 5, decrypt=True)
    return {name: _traced(tracer, run) for name, run in runs.items()}


def _traced(tracer: Tracer, run) -> dict:
    tracer.seconds.clear()
    tracer.calls.clear()
    tracer.sql.clear()
    tracer.statements.clear()
    connection.execute_wrappers.append(tracer.execute)
    try:
        seconds = run()
    finally:
        connection.execute_wrappers.remove(tracer.execute)
    per = len(seconds)
    steps = {
        path: {
            "ms_per_request": round(tracer.seconds[path] * 1000 / per, 3),
            "calls_per_request": round(tracer.calls[path] / per, 2),
        }
        for path in sorted(tracer.seconds)
    }
    sql = {
        path: {
            "statements_per_request": round(count / per, 2),
            "ms_per_request": round(spent * 1000 / per, 3),
        }
        for path, (count, spent) in sorted(tracer.sql.items())
    }
    statements = {gist: round(count / per, 2) for gist, count in sorted(tracer.statements.items())}
    return {
        "requests": per,
        "request_ms_mean": round(statistics.fmean(seconds) * 1000, 3),
        "sql_statements_per_request": round(sum(c for c, _ in tracer.sql.values()) / per, 2),
        "sql_ms_per_request": round(sum(t for _, t in tracer.sql.values()) * 1000 / per, 3),
        "steps": steps,
        "sql_by_step": sql,
        "statements": statements,
    }


def cprofile(client: Client) -> dict:
    urls = _urls(decrypt=True)
    _requests(client, urls, WARMUP_REQUESTS)
    profiler = cProfile.Profile()
    profiler.enable()
    _requests(client, urls, PROFILE_REQUESTS, offset=13)
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({function})",
                "calls_per_request": round(calls / PROFILE_REQUESTS, 2),
                "cumulative_ms_per_request": round(cumulative * 1000 / PROFILE_REQUESTS, 3),
                "own_ms_per_request": round(own * 1000 / PROFILE_REQUESTS, 3),
            }
        )
    by_cumulative = sorted(rows, key=lambda r: -r["cumulative_ms_per_request"])[:40]
    by_own = sorted(rows, key=lambda r: -r["own_ms_per_request"])[:25]
    return {"by_cumulative": by_cumulative, "by_own_time": by_own}


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def whatifs(client: Client) -> list[dict]:
    """Each what-if in turn, round after round in this one process (each applied, measured,
    taken off), so drift in the machine's load falls on all alike; medians over the rounds."""
    from bench import _parameters_patches as patches

    urls = _urls(decrypt=True)
    values: dict[tuple[str, ...], list[float]] = {names: [] for names in WHATIFS}
    walks: dict[tuple[str, ...], list[float]] = {names: [] for names in WHATIFS}
    for round_ in range(WHATIF_ROUNDS):
        for names in WHATIFS:
            patches.apply(names)
            try:
                _requests(client, urls, 20)  # the what-if's own warm-up (a cache to fill)
                measured = _requests(client, urls, WHATIF_REQUESTS, offset=round_ * 97)
                values[names].append(statistics.fmean(measured))
                walks[names].extend(sum(_walk(client, decrypt=False)) for _ in range(WHATIF_WALKS))
            finally:
                patches.undo()
    base_value = statistics.median(values[()])
    base_walk = statistics.median(walks[()])
    results = []
    for names in WHATIFS:
        value, walk = statistics.median(values[names]), statistics.median(walks[names])
        results.append(
            {
                "whatif": list(names),
                "value_decrypted_mean_ms": round(value * 1000, 3),
                "value_decrypted_saves_ms": round((base_value - value) * 1000, 3),
                "walk_plain_p50_ms": round(walk * 1000, 3),
                "walk_plain_saves_ms": round((base_walk - walk) * 1000, 3),
            }
        )
    return results


_VERSION_ROW_SQL = """
SELECT p.name, p.lookup, v.version, v.type, v.data_type, v.value, v.ciphertext, v.modified_at
FROM parameters_parameterversion v
JOIN parameters_parameter p ON p.id = v.parameter_id AND v.version = p.version
WHERE p.lookup = %s
"""
# What a value answer needs of the two rows.
_VALUE_FIELDS = (
    "parameter__name parameter__lookup version type data_type value ciphertext modified_at"
)
_ACCESS_KEY_SQL = """
SELECT k.id, k.status, k.secret_ciphertext, k.last_used_at, u.id, u.is_active, u.is_superuser
FROM access_accesskey k JOIN auth_user u ON u.id = k.user_id
WHERE k.access_key_id = %s
"""


def query_costs() -> dict:
    """The two statements every value read runs, through the ORM as today and as one SQL
    statement of the same rows, beside a bare round trip: what the ORM's Python costs here."""
    from django.db.models import F

    from access.models import AccessKey
    from parameters import rules, selectors
    from parameters.models import ParameterVersion

    key_id = os.environ["BENCH_PARAMETERS_AUTH"].split()[1].partition(":")[0]
    selector = rules.parse_selector("/app3/env4/key9")

    def sql(statement: str, *params: object):
        def run():
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchone()

        return run

    candidates = {
        "version_row_orm_today": lambda: selectors._version_row(selector),
        "version_row_orm_only_needed_fields": lambda: (
            ParameterVersion.objects.select_related("parameter")
            .only(*_VALUE_FIELDS.split())
            .filter(parameter__lookup=selector.lookup, version=F("parameter__version"))
            .first()
        ),
        "version_row_one_sql_statement": sql(_VERSION_ROW_SQL, selector.lookup),
        "access_key_orm_today": lambda: (
            AccessKey.objects.select_related("user").filter(access_key_id=key_id).first()
        ),
        "access_key_one_sql_statement": sql(_ACCESS_KEY_SQL, key_id),
        "round_trip_select_1": sql("SELECT 1"),
    }
    costs = {}
    for name, run in candidates.items():
        for _ in range(100):
            run()
        seconds = []
        for _ in range(QUERY_REPEATS):
            started = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - started)
        costs[name] = round(statistics.median(seconds) * 1000, 3)
    return {"ms_median": costs, "repeats": QUERY_REPEATS}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._parameters_profile")
    parser.add_argument("--out", required=True, help="write the whole profile here as JSON")
    args = parser.parse_args(argv)
    client = _client()
    result = {
        "how": (
            "Django's test client in one process against the seeded PostgreSQL database: "
            "middleware, DRF, view, selector, key service, audit append; no WSGI server or "
            "socket; one request at a time"
        ),
        "loops": loops(client),
        # Before the breakdown, whose timing wrappers stay on and would show up in these.
        "cprofile": cprofile(client),
        "whatif_one_process": whatifs(client),
        "query_costs": query_costs(),
        "breakdown": breakdowns(client),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
