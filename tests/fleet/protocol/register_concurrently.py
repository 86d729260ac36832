"""Race registrations on one activation, in a Bosun process of its own.

`python -m tests.fleet.protocol.register_concurrently --threads 12 --limit 5` with the
environment of the Bosun instance to use (BOSUN_DATA_DIR, DATABASE_URL, …), migrated. Prints
one JSON line: how many registrations were accepted and refused (by code), the nodes and the
activation's counter as the database holds them afterwards, and any unexpected errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections import Counter
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")
django.setup()

from bosun_agent import protocol  # noqa: E402 - needs the configured Django above
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from fleet.codes import activation_code_hash, new_activation_id  # noqa: E402
from fleet.models import Activation, ManagedNode  # noqa: E402
from fleet.protocol.registration import node_register  # noqa: E402
from fleet.protocol.validation import registration_clean  # noqa: E402

CODE = "RaceRaceRaceRaceRace"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--limit", type=int, required=True)
    args = parser.parse_args()
    activation = Activation.objects.create(
        id=new_activation_id(),
        code_hash=activation_code_hash(CODE),
        registration_limit=args.limit,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    connection.close()
    start = threading.Barrier(args.threads)
    outcomes: Counter[str] = Counter()
    errors: list[str] = []

    def register(number: int) -> None:
        body = {
            "protocol": protocol.PROTOCOL_VERSION,
            "activation_id": activation.pk,
            "activation_code": CODE,
            "public_key": protocol.public_key_text(protocol.generate_private_key()),
            "fingerprint": f"{number:032x}",
            "facts": {"hostname": f"race-{number}"},
        }
        try:
            start.wait()
            node_register(registration=registration_clean(body))
            outcomes["registered"] += 1
        except protocol.ProtocolError as refusal:
            outcomes[refusal.code] += 1
        except Exception as error:  # reported below; a thread's exception would vanish
            errors.append(f"{number}: {error!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(n,)) for n in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    activation.refresh_from_db()
    report = {
        "outcomes": dict(outcomes),
        "nodes": ManagedNode.objects.filter(activation_id=activation.pk).count(),
        "counter": activation.registrations_count,
        "errors": errors,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
