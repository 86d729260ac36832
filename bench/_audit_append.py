"""The audit benchmark's worker, run in a Bosun process of its own (see bench/audit.py).

`append --events N --start-at T`: wait until wall-clock time T, append N events one by one
through audit.services.audit_record (each its own transaction, as a request's would be), print
JSON with the start, end and each append's latency.

`fill --events N`: bring the trail to N events quickly for timing `audit verify`: rows built
with the same chain code the service uses, inserted 5,000 per transaction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")
django.setup()

# Django must be configured before these imports.
from django.db import models, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit import append as chain_append  # noqa: E402
from audit import chain, services  # noqa: E402
from audit.models import AuditEvent, ChainHead  # noqa: E402

FILL_BATCH = 5000


def sample(index: int) -> dict:
    """An event shaped like an aws CLI PutParameter: resources, redacted value, request id."""
    return {
        "principal": "access-key:AKIABOSUNBENCH000001",
        "action": "ssm:PutParameter",
        "outcome": "success",
        "resources": [f"arn:aws:ssm:us-east-1:000000000000:parameter/app/prod/key-{index}"],
        "params": {"Name": f"/app/prod/key-{index}", "Type": "SecureString", "Value": "s3cret"},
        "source_ip": "192.0.2.10",
        "user_agent": "aws-cli/2.17.0 md/Botocore#1.35.0 ua/2.0 os/linux#6.1 md/arch#x86_64",
        "request_id": str(uuid.uuid4()),
        "face": "aws",
    }


def append(events: int, start_at: float) -> dict:
    services.audit_record(**sample(-1))  # opens the connection before the clock starts
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    latencies = []
    for index in range(events):
        before = time.perf_counter()
        services.audit_record(**sample(index))
        latencies.append(time.perf_counter() - before)
    return {"started": started, "ended": time.time(), "latencies": latencies}


def fill(events: int) -> dict:
    head = ChainHead.objects.filter(pk=ChainHead.ROW_ID).first()
    sequence, prev_hash = (head.sequence, head.hash) if head else (0, chain.GENESIS)
    moment = timezone.now()
    while sequence < events:
        batch = []
        for _ in range(min(FILL_BATCH, events - sequence)):
            sequence += 1
            fields = sample(sequence)
            event = AuditEvent(
                sequence=sequence,
                time=moment + timedelta(microseconds=sequence),
                principal=fields["principal"],
                source_ip=fields["source_ip"],
                user_agent=fields["user_agent"],
                action=fields["action"],
                resources=fields["resources"],
                params_json=services._params_text(fields["params"]),
                outcome=fields["outcome"],
                request_id=fields["request_id"],
                face=fields["face"],
                prev_hash=prev_hash,
            )
            document = {
                **chain_append._document(event.__dict__),
                "sequence": sequence,
                "time": chain.format_time(event.time),
                "prev_hash": prev_hash,
            }
            event.hash = prev_hash = chain.event_hash(document)
            batch.append(event)
        with transaction.atomic():
            # The model refuses bulk inserts (they would bypass the chain); this one is the chain.
            models.QuerySet(AuditEvent).bulk_create(batch)
            ChainHead.objects.update_or_create(
                pk=ChainHead.ROW_ID, defaults={"sequence": sequence, "hash": prev_hash}
            )
    return {"events": sequence}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["append", "fill"])
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args()
    result = append(args.events, args.start_at) if args.mode == "append" else fill(args.events)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
