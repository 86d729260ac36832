"""A gunicorn config file for bench/parameters.py's what-if and profile runs (never the
shipped server's).

`manage.py serve web` starts gunicorn as shipped; gunicorn also reads `GUNICORN_CMD_ARGS`, so
the benchmark passes `--config <this file>` there, and says what to do in the environment:

- `BENCH_PARAMETERS_WHATIF`: the what-ifs of bench/_parameters_patches.py (comma-separated),
  applied by each worker once its Django application is loaded;
- `BENCH_PARAMETERS_PROFILE_DIR`: each worker profiles the requests it serves (cProfile, from
  gunicorn's pre_request to its post_request hook, after its first WARMUP_REQUESTS, whose
  imports and caches are a start-up cost) and writes `worker-PID.prof` and `worker-PID.json`
  (how many requests were profiled) there when it exits.
"""

from __future__ import annotations

import cProfile
import json
import os
import sys
from pathlib import Path

WARMUP_REQUESTS = 25

_profiler: cProfile.Profile | None = None
_seen = 0
_profiled = 0


def post_worker_init(worker) -> None:
    global _profiler
    from bench import _parameters_patches

    names = os.environ.get("BENCH_PARAMETERS_WHATIF", "").split(",")
    applied = _parameters_patches.apply(names)
    # Printed, not logged: the server may log warnings only; its output goes to its log file.
    print(f"bench what-if applied: {', '.join(applied) or 'none'}", file=sys.stderr, flush=True)
    if os.environ.get("BENCH_PARAMETERS_PROFILE_DIR"):
        _profiler = cProfile.Profile()


def pre_request(worker, request) -> None:
    global _seen, _profiled
    _seen += 1
    if _profiler is not None and _seen > WARMUP_REQUESTS:
        _profiled += 1
        _profiler.enable()


def post_request(worker, request, environ, response) -> None:
    if _profiler is not None:
        _profiler.disable()


def worker_exit(server, worker) -> None:
    directory = os.environ.get("BENCH_PARAMETERS_PROFILE_DIR")
    if _profiler is None or not directory:
        return
    stem = Path(directory) / f"worker-{os.getpid()}"
    _profiler.dump_stats(f"{stem}.prof")
    Path(f"{stem}.json").write_text(json.dumps({"profiled_requests": _profiled}))
