"""Celery tasks of the fleet: thin wrappers that call services."""

from celery import shared_task

from fleet.protocol.auth import request_nonces_prune
from fleet.protocol.messages import messages_expire
from fleet.protocol.status import nodes_connection_lost_sweep


@shared_task(name="fleet.tasks.sweep_connection_lost")
def sweep_connection_lost() -> None:
    """Frequent (beat): silent nodes become ConnectionLost, overdue messages expire, and
    nonces older than any acceptable timestamp are forgotten."""
    nodes_connection_lost_sweep()
    messages_expire()
    request_nonces_prune()
