"""The Fleet Manager node list with 10,000 nodes: page 1 through the web role, as a browser.

The nodes go in by bulk SQL (the ORM's bulk_create, in a `manage.py shell`): registering
10,000 agents would measure registration again, not the page. Each node has three tags
(Env, Role, Team) and a status and last-seen time spread the way a real fleet's are. The page
is fetched signed in as admin from gunicorn (`serve web`, as shipped): the plain list, one
filtered by status and tag, and one sorted by last seen. The number of SQL queries each
costs is counted in a `manage.py shell` with Django's CaptureQueriesContext (the test suite's
query-count test, tests/fleet/test_node_list_queries.py, guards that it does not grow).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from bench import _stack

NODES = 10_000
REQUESTS = 20
WARMUP_REQUESTS = 3
TARGET_MS = 300
PAGES = {
    "list": "/fleet/",
    "filtered": "/fleet/?status=Online&tag=Env%3Dprod",
    "sorted_by_last_seen": "/fleet/?sort=-last_seen",
}

_INSERT = """
import json, random
from datetime import timedelta
from django.utils import timezone
from fleet.codes import new_node_id
from fleet.models import ManagedNode, NodeTag

WANTED = {wanted}
rng = random.Random(4)
now = timezone.now()
existing = ManagedNode.objects.count()
nodes, tags = [], []
for i in range(existing, WANTED):
    roll = rng.random()
    status = "Online" if roll < 0.9 else "ConnectionLost" if roll < 0.98 else "Deregistered"
    seen = now - timedelta(seconds=rng.randint(0, 60 if status == "Online" else 86400 * 3))
    node_id = new_node_id()
    nodes.append(ManagedNode(
        id=node_id, name=f"bench-{{i:05d}}", status=status, status_changed_at=seen,
        registered_at=now - timedelta(days=rng.randint(1, 400)), last_seen_at=seen,
        public_key="A" * 43 + "=", key_rotated_at=now, fingerprint=f"{{i:032x}}",
        hostname=f"bench-{{i:05d}}.example.net", platform_type="Linux",
        platform_name=rng.choice(["Debian GNU/Linux", "Ubuntu", "Rocky Linux"]),
        platform_version="12", architecture="x86_64",
        ip_address=f"10.{{i >> 16 & 255}}.{{i >> 8 & 255}}.{{i & 255}}",
        ip_addresses=[f"10.{{i >> 16 & 255}}.{{i >> 8 & 255}}.{{i & 255}}"],
        agent_version="0.1.0",
    ))
    tags += [
        NodeTag(node_id=node_id, key="Env", value=rng.choice(["prod", "staging", "dev"])),
        NodeTag(node_id=node_id, key="Role", value=rng.choice(["web", "db", "cache", "queue"])),
        NodeTag(node_id=node_id, key="Team", value=f"team-{{rng.randint(1, 20)}}"),
    ]
ManagedNode.objects.bulk_create(nodes, batch_size=2000)
NodeTag.objects.bulk_create(tags, batch_size=5000)
print(json.dumps({{"inserted": len(nodes), "nodes": ManagedNode.objects.count(),
                  "tags": NodeTag.objects.count()}}))
"""

# The same views in-process: SQL queries per page, and the render time without HTTP.
_QUERIES = """
import json, statistics, time
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.contrib.auth import get_user_model

client = Client(HTTP_HOST="127.0.0.1")
client.force_login(get_user_model().objects.get(username="admin"))
figures = {{}}
for name, url in {pages!r}.items():
    with CaptureQueriesContext(connection) as captured:
        answer = client.get(url)
    assert answer.status_code == 200, (url, answer.status_code)
    queries = len(captured)  # now: the next request clears the connection's query log
    times = []
    for _ in range(10):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    figures[name] = {{
        "queries": queries, "in_process_ms_p50": round(statistics.median(times), 1)
    }}
print(json.dumps(figures))
"""


def measure(*, env: dict[str, str], data_dir: Path) -> dict:
    started = time.monotonic()
    inserted = _shell(_INSERT.format(wanted=NODES), env=env)
    queries = _shell(_QUERIES.format(pages=PAGES), env=env)
    with _stack.serving("web", env=env, log_path=data_dir / "web-nodes.log") as base_url:
        session = _stack.sign_in(base_url)
        pages = {name: _time_page(base_url + url, session) for name, url in PAGES.items()}
    for name, figures in pages.items():
        figures.update(queries[name])
    slowest = max(figures["p50_ms"] for figures in pages.values())
    return {
        "nodes": inserted["nodes"],
        "tags": inserted["tags"],
        "how": (
            f"{inserted['inserted']} nodes inserted by bulk_create (3 tags each; ~90 % Online, "
            "8 % ConnectionLost, 2 % Deregistered); page 1 fetched signed in as admin from "
            f"`serve web` (gunicorn), median of {REQUESTS} after {WARMUP_REQUESTS} warm-up "
            "requests; queries counted in-process with CaptureQueriesContext"
        ),
        "pages": {name: {"url": PAGES[name], **figures} for name, figures in pages.items()},
        "target": {
            "p50_ms_below": TARGET_MS,
            "queries": "fixed (tests/fleet/test_node_list_queries.py)",
        },
        "target_met": slowest < TARGET_MS,
        "seconds": round(time.monotonic() - started, 1),
    }


def _time_page(url: str, session: str) -> dict:
    request = urllib.request.Request(url, headers={"Cookie": f"bosun_session={session}"})
    times = []
    size = 0
    for index in range(WARMUP_REQUESTS + REQUESTS):
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read()
            if answer.status != 200 or b"mi-" not in body:
                raise RuntimeError(f"{url} answered {answer.status} without node rows")
        elapsed = (time.perf_counter() - started) * 1000
        size = len(body)
        if index >= WARMUP_REQUESTS:
            times.append(elapsed)
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
        "bytes": size,
    }


def _shell(code: str, *, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [_stack.PYTHON, "manage.py", "shell", "-c", code],
        cwd=_stack.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"manage.py shell failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return json.loads(lines[-1])
