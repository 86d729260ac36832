"""What Bosun's management commands with subcommands share (`audit verify`, `sessions verify`).

Each subcommand is a method `_<name>(options)`; a database that cannot be read (not migrated,
not reachable) ends the command with exit code UNAVAILABLE and one line saying so, so a
monitoring job can tell "the check could not run" from "the check failed".
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

UNAVAILABLE = 3


class SubcommandCommand(BaseCommand):
    # What the command reads, for the one-line error ("the audit trail", "the sessions").
    subject = "the database"

    def handle(self, *args: Any, **options: Any) -> None:
        handler = getattr(self, f"_{options['subcommand']}")
        try:
            handler(options)
        except DatabaseError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise CommandError(
                f"cannot read {self.subject} ({reason}); is the database migrated?",
                returncode=UNAVAILABLE,
            ) from None
