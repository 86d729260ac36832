"""Failed authentications are audited within a budget, so nobody can grow the chain at will.

Anyone can fail to authenticate as often as they like (a bad signature on the AWS face, a wrong
Bearer secret on the REST API, a wrong password on the sign-in page), and every audit append
serializes on the chain head: without a bound, that is unbounded storage and a way to slow
every audited request down.

Per source address, the first FAILURES_PER_SOURCE failures of each minute are recorded one by
one. The next one is recorded once more, as a summary that says further failures are being
counted and not recorded (`params.suppressed`); the rest of that minute is only counted, with a
warning in the log at every tenfold. All sources together get FAILURES_TOTAL a minute, past
which the same happens for everyone (a spread-out attack). Counters live in the cache (Redis in
production, so every process shares them); if the cache cannot count, every failure is
recorded: the budget never loses evidence by accident.

The refusal itself never depends on the budget: every face refuses exactly as before.
"""

from __future__ import annotations

import logging
import time
from enum import Enum
from typing import Any

from django.core.cache import cache

from audit.services import audit_record

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
FAILURES_PER_SOURCE = 30
FAILURES_TOTAL = 600
_KEY_PREFIX = "audit:auth-failures"


class Verdict(Enum):
    RECORD = "record"  # within the budget: the event as it is
    SUMMARY = "summary"  # the first one past it: recorded once, saying the rest is counted
    COUNTED = "counted"  # the rest of the minute


def audit_failed_authentication(**fields: Any) -> Verdict:
    """`audit_record(**fields)` for a failed authentication, within the budget."""
    source = str(fields.get("source_ip") or "")
    verdict, count, scope = _verdict(source)
    if verdict is Verdict.RECORD:
        audit_record(**fields)
    elif verdict is Verdict.SUMMARY:
        suppressed = (
            f"more than {_budget_of(scope)} failed authentications {_scope_text(scope, source)} "
            f"within {WINDOW_SECONDS} s: the rest of this window is counted, not recorded one "
            "by one"
        )
        audit_record(**{**fields, "params": {"suppressed": suppressed}})
    elif _tenfold(count - _budget_of(scope)):
        logger.warning(
            "%d failed authentications %s within %d s (past the audit budget: counted only)",
            count,
            _scope_text(scope, source),
            WINDOW_SECONDS,
        )
    return verdict


def _verdict(source: str) -> tuple[Verdict, int, str]:
    window = int(time.time() // WINDOW_SECONDS)
    try:
        per_source = _count(f"{_KEY_PREFIX}:{window}:{source or '-'}")
        total = _count(f"{_KEY_PREFIX}:{window}:*")
    except Exception:
        logger.warning("the audit budget could not count a failed authentication; recorded")
        return Verdict.RECORD, 0, "source"
    if per_source <= FAILURES_PER_SOURCE and total <= FAILURES_TOTAL:
        return Verdict.RECORD, per_source, "source"
    scope, count = ("source", per_source) if per_source > FAILURES_PER_SOURCE else ("all", total)
    if count == _budget_of(scope) + 1:
        return Verdict.SUMMARY, count, scope
    return Verdict.COUNTED, count, scope


def _count(key: str) -> int:
    # add() is a no-op when the key exists; incr() is atomic in Redis. The key outlives its
    # window, so it cannot expire between the two.
    cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired after all (a very slow call): start again
        cache.set(key, 1, timeout=2 * WINDOW_SECONDS)
        return 1


def _budget_of(scope: str) -> int:
    return FAILURES_PER_SOURCE if scope == "source" else FAILURES_TOTAL


def _scope_text(scope: str, source: str) -> str:
    return f"from {source or 'an unknown address'}" if scope == "source" else "from all sources"


def _tenfold(past: int) -> bool:
    """10, 100, 1000, … failures past the budget."""
    return past >= 10 and str(past).rstrip("0") == "1"
