"""The fan-out profile's sweep timer, run in a Bosun process of its own (bench/_fanout_profile.py).

    python -m bench._fanout_sweep SECONDS INTERVAL

Runs `commands.services.sweep.commands_sweep()` (what beat schedules every 5 s) every INTERVAL
seconds for SECONDS, and prints one JSON line per sweep: its milliseconds, its SQL statements,
and how many commands were open when it began (Django's start-up excluded).
"""

from __future__ import annotations

import json
import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")
django.setup()

# Django must be configured before these imports.
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from commands.models import TERMINAL_COMMAND_STATUSES, Command  # noqa: E402
from commands.services.sweep import commands_sweep  # noqa: E402

SQL_CHARACTERS = 240


def main(seconds: float, interval: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        open_commands = Command.objects.exclude(status__in=TERMINAL_COMMAND_STATUSES).count()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            commands_sweep()
            elapsed = time.perf_counter() - started
        line = {
            "ms": round(elapsed * 1000, 3),
            "queries": len(captured.captured_queries),
            "open_commands": open_commands,
            "sql": [
                " ".join(query["sql"].split())[:SQL_CHARACTERS]
                for query in captured.captured_queries
            ],
        }
        print(json.dumps(line), flush=True)
        time.sleep(interval)
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), float(sys.argv[2])))
