"""Celery tasks of the webhooks app: thin wrappers over the delivery machinery."""

from celery import shared_task

from webhooks import delivery
from webhooks.services import DELIVER_TASK


@shared_task(name=DELIVER_TASK)
def deliver_due() -> int:
    """Woken after an emitter's commit, and swept by beat for anything a lost wake-up or a
    dead worker left behind (lapsed claims, retries whose backoff has run out); it also
    forgets finished deliveries past their retention."""
    made = delivery.deliver_due()
    delivery.finished_prune()
    return made
