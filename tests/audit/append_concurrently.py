"""Append audit events from several threads at once, in a Bosun process of its own.

`python -m tests.audit.append_concurrently --threads 4 --events 50 --label a` with the
environment of the Bosun instance to write to (BOSUN_DATA_DIR, DATABASE_URL, …). Exits 1 and
prints the errors if any append failed. Used by test_concurrency.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")
django.setup()

from django.db import connection  # noqa: E402 - needs the configured Django above

from audit.services import audit_record  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--label", default="writer")
    args = parser.parse_args()
    start = threading.Barrier(args.threads)
    errors: list[str] = []

    def append(number: int) -> None:
        try:
            start.wait()
            for index in range(args.events):
                audit_record(
                    principal=f'{args.label}-{number} «ünïcode» "quoted"',
                    action="bosun:ConcurrencyTest",
                    outcome="success" if index % 3 else "denied",
                    resources=[f"arn:aws:ssm:us-east-1:000000000000:parameter/p{index}", 'a"b\\c'],
                    # Values that must hash the same after the database has stored them.
                    params={"index": index, "ratio": 1e16, "tiny": 1.5e-7, "text": "tab\tnul\x00"},
                    user_agent="agent/1.0 \u2603",
                    user_id=number + 1,
                    face="task",
                )
        except Exception as error:  # reported below; a thread's exception would vanish
            errors.append(f"{args.label}-{number}: {error!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
