"""`python manage.py audit verify|export|checkpoint|prune`: the audit trail from a shell.

verify   recompute the hash chain; names the first broken event and exits 1 if there is one
export   write events as JSON Lines (one event per line, hashes included)
checkpoint  sign a checkpoint at the newest event
prune    delete events before a date, behind a signed checkpoint (as the daily task does)

Exit codes: 0 done, 1 the chain is broken, 2 bad input, 3 the database could not be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from io import TextIOBase
from typing import Any

from django.core.management.base import CommandError, CommandParser

from audit import selectors, services
from audit.exceptions import AuditChainBroken
from audit.verification import verify_chain
from bosun.lib.management import SubcommandCommand

# Exit codes, so a monitoring job can tell tampering from a check that could not run.
BROKEN = 1
BAD_INPUT = 2


def parse_moment(option: str, raw: str | None) -> datetime | None:
    """An ISO 8601 date or date and time; without a zone it is UTC."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            f"{option}: cannot read {raw!r} as a date and time; "
            "use ISO 8601 such as 2026-01-01T00:00:00Z or 2026-01-01",
            returncode=BAD_INPUT,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(SubcommandCommand):
    subject = "the audit trail"
    help = "Verify, export, checkpoint or prune the audit trail."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
        commands.add_parser("verify", help="recompute the chain and name the first broken event")
        export = commands.add_parser("export", help="write events as JSON Lines")
        export.add_argument("--since", help="from this time (inclusive, ISO 8601; UTC if no zone)")
        export.add_argument("--until", help="until this time (exclusive)")
        export.add_argument("--output", help="write to this file instead of standard output")
        commands.add_parser("checkpoint", help="sign a checkpoint at the newest event")
        prune = commands.add_parser("prune", help="delete events older than --before")
        prune.add_argument("--before", required=True, help="delete events before this time")

    def _verify(self, options: dict[str, Any]) -> None:
        started = time.perf_counter()
        report = verify_chain()
        elapsed = time.perf_counter() - started
        if not report.ok:
            raise CommandError(f"audit trail broken at {report.describe()}", returncode=BROKEN)
        self.stdout.write(f"Audit trail intact: {report.describe()} ({elapsed:.2f} s).")

    def _export(self, options: dict[str, Any]) -> None:
        since = parse_moment("--since", options["since"])
        until = parse_moment("--until", options["until"])
        if since and until and until <= since:
            raise CommandError("--until must be later than --since", returncode=BAD_INPUT)
        count = 0
        with self._output(options["output"]) as out:
            try:
                for record in selectors.export_records(since=since, until=until):
                    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                    count += 1
            except BrokenPipeError:  # `audit export | head`: the reader has had enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise SystemExit(1) from None
        if options["output"]:
            self.stdout.write(f"Exported {count} events to {options['output']}.")

    def _checkpoint(self, options: dict[str, Any]) -> None:
        checkpoint = services.audit_checkpoint()
        if checkpoint is None:
            self.stdout.write("The audit trail is empty; nothing to sign.")
        else:
            self.stdout.write(f"Signed a checkpoint at event {checkpoint.sequence}.")

    def _prune(self, options: dict[str, Any]) -> None:
        before = parse_moment("--before", options["before"])
        assert before is not None  # noqa: S101 - argparse requires --before
        try:
            result = services.audit_prune(before=before, face="cli")
        except AuditChainBroken as error:
            raise CommandError(str(error), returncode=BROKEN) from None
        if result.checkpoint is None:
            self.stdout.write("No events before that time.")
        else:
            self.stdout.write(
                f"Deleted {result.deleted} events up to event {result.checkpoint.sequence}, "
                "behind a signed checkpoint."
            )

    @contextlib.contextmanager
    def _output(self, path: str | None) -> Iterator[TextIOBase]:
        if not path:
            yield self.stdout
            return
        try:
            handle: TextIOBase = open(path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as error:
            raise CommandError(
                f"--output: cannot write {path} ({error.strerror})", returncode=BAD_INPUT
            ) from None
        with handle:
            yield handle
