"""Race relay writers on one recording in a Bosun process of its own, a connection per thread.

`python -m tests.shell_sessions.record_concurrently --writers 6 --chunks 40` with the
environment of a migrated Bosun instance (BOSUN_DATA_DIR, DATABASE_URL, …). Every writer
appends the same chunks in order, as relays retrying after a lost reply would, then seals.
Prints one JSON line: what each writer
saw, and what verify and the .cast say afterwards.
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

from django.contrib.auth import get_user_model  # noqa: E402 - needs the configured Django above
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit.models import AuditEvent  # noqa: E402
from audit.verification import verify_chain  # noqa: E402
from fleet.codes import new_node_id  # noqa: E402
from fleet.models import ManagedNode  # noqa: E402
from sessions.asciicast import CastEncoder  # noqa: E402
from sessions.codes import SEAL_RECORDING, new_session_id  # noqa: E402
from sessions.models import Session  # noqa: E402
from sessions.services.recording import (  # noqa: E402
    recording_append,
    recording_cast,
    recording_seal,
    recording_start,
    recording_verify,
)
from tests.support.races import race  # noqa: E402


def chunk(sequence: int) -> bytes:
    text = f"line {sequence} ünïcödé €\r\n".encode()
    return CastEncoder(input_recorded=True).output(sequence, text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, required=True)
    parser.add_argument("--chunks", type=int, required=True)
    args = parser.parse_args()
    now = timezone.now()
    user, _ = get_user_model().objects.get_or_create(username="racer")
    node = ManagedNode.objects.create(
        id=new_node_id(),
        name="race",
        status_changed_at=now,
        registered_at=now,
        key_rotated_at=now,
        public_key="A" * 43 + "=",
        fingerprint="race",
    )
    session = Session.objects.create(
        session_id=new_session_id(user.username),
        node=node,
        started_by=user,
        principal_arn="arn:aws:iam::000000000000:user/racer",
        principal_name="racer",
    )
    recording_start(session=session, width=80, height=24, term="xterm", login_shell="bash")
    connection.close()

    def relay(number: int) -> list[Any]:
        mine = Session.objects.get(pk=session.pk)
        # A conflict or a gap would raise: race() reports it among the errors.
        hashes = [
            recording_append(session=mine, sequence=sequence, events=chunk(sequence)).sha256
            for sequence in range(args.chunks)
        ]
        recording_seal(session=mine, face="cli")
        return [hashes]

    outcomes, errors = race(args.writers, relay)
    report = recording_verify(session=session)
    cast = b"".join(recording_cast(session=session)).decode("utf-8").splitlines()
    output = "".join(json.loads(line)[2] for line in cast[1:])
    expected = "".join(f"line {sequence} ünïcödé €\r\n" for sequence in range(args.chunks))
    print(
        json.dumps(
            {
                "errors": errors,
                "hashes": outcomes,
                "verified": report.ok,
                "describe": report.describe(),
                "chunks": report.chunks,
                "seal_events": AuditEvent.objects.filter(action=SEAL_RECORDING).count(),
                "audit_ok": verify_chain().ok,
                "cast_matches": output == expected,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
