"""Celery tasks of the dashboard shell: thin wrappers that call services."""

import socket

from celery import shared_task
from celery.signals import worker_ready

from web import services


@shared_task(name=services.RUN_SYSTEM_CHECK_TASK)
def run_system_check(*, check_id: int, actor_id: int | None = None) -> None:
    """Carries who asked (`actor_id`, the pattern of every task acting for someone); the
    request was authorized when it was enqueued, so the task authorizes nothing again."""
    services.system_check_run(check_id=check_id)


@shared_task(name="web.tasks.record_worker_heartbeat")
def record_worker_heartbeat() -> None:
    services.worker_heartbeat_record(hostname=socket.gethostname())


@worker_ready.connect
def _report_ready(**_kwargs) -> None:
    # Without this the dashboard says "waiting" until beat's first interval has passed.
    record_worker_heartbeat.delay()
