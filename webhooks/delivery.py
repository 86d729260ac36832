"""Delivering queued events: claim due rows, POST them signed, record each outcome.

At least once: a row is claimed for a while (CLAIM_SECONDS) before it is posted, and a worker
that dies between the POST and recording it leaves the row to be claimed again once that
claim lapses, so a receiver may see a delivery twice and deduplicates on X-Bosun-Delivery.
PostgreSQL workers skip each other's locked rows; on SQLite every transaction takes the write
lock at BEGIN (settings), so claims queue instead. The claim token is what tells a worker
which rows are its own either way.

The HTTP side runs in a few threads and never touches the database; this thread claims and
records.
"""

from __future__ import annotations

import functools
import http.client
import logging
import random
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from bosun.lib.crypto import CryptoError
from webhooks import signing
from webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from webhooks.sealing import secret_open

logger = logging.getLogger(__name__)

USER_AGENT = "Bosun-Webhooks/1"
TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 8
FIRST_BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 3600
JITTER = 0.1
BATCH_SIZE = 50
PARALLEL_POSTS = 8
# A batch is posted PARALLEL_POSTS at a time, each within TIMEOUT_SECONDS per socket
# operation: well inside this, so a claim rarely lapses while its POST is still running.
CLAIM_SECONDS = 300
# One run stops after this many batches; the next wake-up or sweep takes the rest.
MAX_BATCHES = 20
# Delivered and failed deliveries are kept this long for their endpoint's page, then pruned.
RETENTION = timedelta(days=30)
PRUNE_BATCH = 1000
ERROR_MAX = WebhookDelivery._meta.get_field("last_error").max_length or 255
RESPONSE_READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Attempt:
    """What one POST needs; no database access from here on."""

    pk: int
    delivery_id: str
    event_type: str
    payload: str
    url: str
    endpoint_name: str
    attempts: int  # made before this one
    claim: uuid.UUID  # this run's claim on the row: only a row still claimed is recorded
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str = ""


def backoff(failed_attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour; ±10% so a receiver that comes
    back is not hit by every delayed delivery in the same second."""
    exponent = max(0, failed_attempts - 1)
    base = min(FIRST_BACKOFF_SECONDS * 2 ** min(exponent, 16), MAX_BACKOFF_SECONDS)
    jitter = random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - spreading load, not secrecy
    return timedelta(seconds=base * jitter)


def deliver_due(*, now: datetime | None = None, max_batches: int = MAX_BATCHES) -> int:
    """Attempt every delivery due by `now`; returns how many attempts were made."""
    made = 0
    for _ in range(max_batches):
        moment = now or timezone.now()
        attempts = claim_due(now=moment)
        if not attempts:
            break
        made += len(attempts)
        for attempt, outcome in post_all(attempts):
            record(attempt, outcome, now=now or timezone.now())
        if len(attempts) < BATCH_SIZE:
            break
    return made


def finished_prune(*, now: datetime | None = None) -> int:
    """Forget delivered and failed deliveries past the retention, a batch per run."""
    cutoff = (now or timezone.now()) - RETENTION
    pks = list(
        WebhookDelivery.objects.filter(
            state__in=[DeliveryState.DELIVERED, DeliveryState.FAILED], created_at__lt=cutoff
        ).values_list("pk", flat=True)[:PRUNE_BATCH]
    )
    if not pks:
        return 0
    deleted, _ = WebhookDelivery.objects.filter(pk__in=pks).delete()
    return deleted


def _due(now: datetime) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(
        state=DeliveryState.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
    )


def claim_due(*, now: datetime, size: int = BATCH_SIZE) -> list[Attempt]:
    # A cheap look first: the sweep runs every few seconds and usually finds nothing, and
    # on SQLite the claim's transaction would take the write lock for nothing.
    if not _due(now).exists():
        return []
    token = uuid.uuid4()
    with transaction.atomic():
        pks = list(
            _due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:size]
        )
        WebhookDelivery.objects.filter(
            pk__in=pks, state=DeliveryState.PENDING, next_attempt_at__lte=now
        ).update(claim=token, next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    rows = list(
        WebhookDelivery.objects.filter(claim=token, state=DeliveryState.PENDING)
        .select_related("endpoint")
        .order_by("next_attempt_at", "pk")
    )
    return _attempts(rows, token, now)


def _attempts(rows: Iterable[WebhookDelivery], claim: uuid.UUID, now: datetime) -> list[Attempt]:
    opened: dict[int, str | None] = {}
    attempts = []
    for row in rows:
        endpoint: WebhookEndpoint = row.endpoint
        if endpoint.pk not in opened:
            try:
                opened[endpoint.pk] = secret_open(endpoint)
            except CryptoError:
                logger.error("webhook %s: its signing secret cannot be opened", endpoint.name)
                opened[endpoint.pk] = None
        secret = opened[endpoint.pk]
        attempt = Attempt(
            pk=row.pk,
            delivery_id=str(row.delivery_id),
            event_type=row.event_type,
            payload=row.payload,
            url=endpoint.url,
            endpoint_name=endpoint.name,
            attempts=row.attempts,
            claim=claim,
            secret=secret or "",
        )
        if secret is None:
            # Never sent unsigned: counted as a failed attempt, so it retries after a key fix.
            record(attempt, Outcome(False, error="The signing secret cannot be opened."), now=now)
            continue
        attempts.append(attempt)
    return attempts


def post_all(attempts: list[Attempt]) -> list[tuple[Attempt, Outcome]]:
    if len(attempts) == 1:
        return [(attempts[0], post(attempts[0]))]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_POSTS, len(attempts))) as pool:
        return list(zip(attempts, pool.map(post, attempts), strict=True))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not an instruction: the body and its signature were meant
    for the configured URL only."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects)


def request_headers(attempt: Attempt, *, timestamp: int) -> dict[str, str]:
    body = attempt.payload.encode()
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Bosun-Event": attempt.event_type,
        "X-Bosun-Delivery": attempt.delivery_id,
        "X-Bosun-Timestamp": str(timestamp),
        "X-Bosun-Signature": signing.signature(
            secret=attempt.secret, timestamp=timestamp, body=body
        ),
    }


def post(attempt: Attempt) -> Outcome:
    """One signed POST; any 2xx is delivered. Errors are short and name no secret."""
    headers = request_headers(attempt, timestamp=int(time.time()))
    # The URL is http(s) by webhooks.validation, so urllib's other schemes never come up.
    request = urllib.request.Request(  # noqa: S310
        attempt.url, data=attempt.payload.encode(), headers=headers, method="POST"
    )
    try:
        with _opener().open(request, timeout=TIMEOUT_SECONDS) as response:
            response.read(RESPONSE_READ_LIMIT)
            status = response.status
    except urllib.error.HTTPError as error:
        error.close()
        if 300 <= error.code < 400:
            return Outcome(False, error.code, f"HTTP {error.code}: redirect not followed")
        return Outcome(False, error.code, _short(f"HTTP {error.code} {error.reason}"))
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError | socket.timeout):
            return Outcome(False, None, f"No answer within {TIMEOUT_SECONDS} s")
        return Outcome(False, None, _short(f"Cannot connect: {error.reason}"))
    except TimeoutError:
        return Outcome(False, None, f"No answer within {TIMEOUT_SECONDS} s")
    except (OSError, http.client.HTTPException, ValueError) as error:
        return Outcome(False, None, _short(f"{type(error).__name__}: {error}"))
    if 200 <= status < 300:
        return Outcome(True, status)
    return Outcome(False, status, f"HTTP {status}")


def _short(text: str) -> str:
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def record(attempt: Attempt, outcome: Outcome, *, now: datetime) -> None:
    """Write the outcome on the row, if this run still holds its claim (a lapsed claim
    belongs to whichever worker took the row over)."""
    attempts = attempt.attempts + 1
    changes: dict[str, object] = {
        "attempts": attempts,
        "last_attempt_at": now,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "claim": None,
    }
    if outcome.ok:
        changes.update(state=DeliveryState.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif attempts >= MAX_ATTEMPTS:
        changes.update(state=DeliveryState.FAILED, next_attempt_at=None)
    else:
        changes.update(next_attempt_at=now + backoff(attempts))
    WebhookDelivery.objects.filter(pk=attempt.pk, claim=attempt.claim).update(**changes)
    _log(attempt, outcome, str(changes.get("state", DeliveryState.PENDING)))


def _log(attempt: Attempt, outcome: Outcome, state: str) -> None:
    if outcome.ok:
        logger.info(
            "webhook %s: delivered %s %s (HTTP %s)",
            attempt.endpoint_name,
            attempt.event_type,
            attempt.delivery_id,
            outcome.status_code,
        )
    else:
        logger.warning(
            "webhook %s: %s %s attempt %d failed (%s); now %s",
            attempt.endpoint_name,
            attempt.event_type,
            attempt.delivery_id,
            attempt.attempts + 1,
            outcome.error,
            state,
        )
