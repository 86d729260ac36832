"""Celery tasks of Parameter Store: thin wrappers that call the services."""

from celery import shared_task

from parameters.enforcement import policies_enforce


@shared_task(name="parameters.tasks.enforce_policies")
def enforce_policies() -> int:
    """Frequent (beat): expire parameters and send the notifications their policies ask for."""
    return policies_enforce()
