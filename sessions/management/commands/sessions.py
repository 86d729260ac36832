"""`python manage.py sessions verify SESSION_ID`: Session Manager from a shell.

verify   recompute a recording's hash chain from its header, check its seal against the one
         the audit trail recorded, and name the first problem

Exit codes: 0 done, 1 the recording is broken (or cannot be verified), 2 bad input (an unknown
session id), 3 the database could not be read.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from bosun.lib.management import SubcommandCommand
from sessions.exceptions import DoesNotExistException
from sessions.selectors import session_get
from sessions.services.recording import recording_verify

# Exit codes, so a monitoring job can tell tampering from a check that could not run.
BROKEN = 1
BAD_INPUT = 2


class Command(SubcommandCommand):
    subject = "the sessions"
    help = "Verify session recordings."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
        verify = commands.add_parser(
            "verify", help="recompute a recording's chain and name its first problem"
        )
        verify.add_argument("session_id", metavar="SESSION_ID")

    def _verify(self, options: dict[str, Any]) -> None:
        try:
            session = session_get(session_id=options["session_id"])
        except DoesNotExistException as error:
            raise CommandError(error.message, returncode=BAD_INPUT) from None
        report = recording_verify(session=session)
        if not report.ok:
            raise CommandError(
                f"recording of {report.session_id} failed verification: {report.describe()}",
                returncode=BROKEN,
            )
        self.stdout.write(f"verified: {report.describe()}")
