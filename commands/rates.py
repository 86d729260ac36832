"""MaxConcurrency and MaxErrors: a number or a percentage of the targets, as AWS takes them.

MaxConcurrency: how many invocations may run at once (a percentage rounds up, at least 1).
MaxErrors: how many errors are tolerated; once the error count passes it, no further
invocation is sent (a percentage rounds down, so 10% of 5 targets tolerates none).
"""

from __future__ import annotations

import math
import re

from commands.exceptions import CommandsValidationError

# AWS's patterns for the two members.
MAX_CONCURRENCY = re.compile(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$")
MAX_ERRORS = re.compile(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$")
DEFAULT_MAX_CONCURRENCY = "50"
DEFAULT_MAX_ERRORS = "0"


def rate_check(max_concurrency: str, max_errors: str) -> None:
    """Refuse malformed values before anything is written."""
    if (
        not isinstance(max_concurrency, str)
        or len(max_concurrency) > 7
        or not (MAX_CONCURRENCY.match(max_concurrency))
    ):
        raise CommandsValidationError(
            f"MaxConcurrency {str(max_concurrency)[:20]!r} is not valid: give a number of nodes "
            "(1 or more) or a percentage of the targets (1% to 100%).",
            field="max_concurrency",
        )
    if not isinstance(max_errors, str) or len(max_errors) > 7 or not MAX_ERRORS.match(max_errors):
        raise CommandsValidationError(
            f"MaxErrors {str(max_errors)[:20]!r} is not valid: give a number of errors (0 or "
            "more) or a percentage of the targets (0% to 100%).",
            field="max_errors",
        )


def concurrency_limit(max_concurrency: str, targets: int) -> int:
    if max_concurrency.endswith("%"):
        return max(1, math.ceil(targets * int(max_concurrency[:-1]) / 100))
    return int(max_concurrency)


def error_limit(max_errors: str, targets: int) -> int:
    if max_errors.endswith("%"):
        return math.floor(targets * int(max_errors[:-1]) / 100)
    return int(max_errors)
