"""Race webhook delivery claims in a Bosun process of its own, one connection per thread.

`python -m tests.integration.claim_concurrently --workers 4 --deliveries 60` with the
environment of the Bosun instance to use (BOSUN_DATA_DIR, DATABASE_URL, …), migrated. Queues
the deliveries, lets the workers claim small batches until none is left, and prints one JSON
line: the delivery ids each claim took, and the ids that exist.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")
django.setup()

from celery import current_app  # noqa: E402 - needs the configured Django above
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from access.authorization import Principal  # noqa: E402
from tests.support.races import race  # noqa: E402
from webhooks import delivery, services  # noqa: E402
from webhooks.models import WebhookDelivery  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--deliveries", type=int, required=True)
    args = parser.parse_args()
    # No worker runs here: the claims below are the only consumers of the queue.
    current_app.send_task = lambda *task_args, **task_kwargs: None
    user, _ = get_user_model().objects.get_or_create(
        username="racer", defaults={"is_superuser": True}
    )
    services.webhook_endpoint_create(
        principal=Principal(user=user, face="cli"),
        name="busy",
        url="http://127.0.0.1:9/",
        events=["*"],
    )
    for number in range(args.deliveries):
        services.webhook_event_emit(event_type="parameter.created", data={"n": number})
    connection.close()
    now = timezone.now()

    def claim(number: int) -> list[Any]:
        taken = []
        while batch := delivery.claim_due(now=now, size=7):
            taken.extend(attempt.pk for attempt in batch)
        return taken

    claimed, errors = race(args.workers, claim)
    existing = list(WebhookDelivery.objects.values_list("pk", flat=True))
    print(json.dumps({"claimed": claimed, "errors": errors, "existing": existing}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
