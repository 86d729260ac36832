"""Celery tasks of the audit trail: thin wrappers that call services."""

from celery import shared_task

from audit import services


@shared_task(name="audit.tasks.checkpoint_and_prune")
def checkpoint_and_prune() -> None:
    """Daily (beat): sign a checkpoint at the chain head, prune past the retention setting."""
    services.audit_retention_apply()
