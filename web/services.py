"""Writes of the dashboard shell. Each service owns its transaction and its side effects."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from access import services as access_services
from audit.services import audit_record
from bosun.celery import app as celery_app
from bosun.lib import health, realtime
from bosun.lib.config import ensure_private_file
from bosun.lib.tasks import enqueue_on_commit
from web.models import SystemCheck, WorkerHeartbeat

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name, not a password
RUN_SYSTEM_CHECK_TASK = "web.tasks.run_system_check"


@dataclass(frozen=True)
class FirstAdmin:
    created: bool
    # Only when this call created the admin with a generated password, so it can be shown once.
    generated_password: str | None
    password_file: Path | None


def first_admin_ensure(*, password: str | None, data_dir: Path) -> FirstAdmin:
    """Create the `admin` superuser unless it exists.

    The password comes from BOSUN_ADMIN_PASSWORD, else it is generated and kept 0600 under the
    data dir, so an operator who missed the first start's output can still find it.
    """
    users = get_user_model()
    if users.objects.filter(username=ADMIN_USERNAME).exists():
        return FirstAdmin(created=False, generated_password=None, password_file=None)
    password_file = None
    generated = None
    if not password:
        password_file = data_dir / ADMIN_PASSWORD_FILE
        password = generated = ensure_private_file(
            password_file, lambda: secrets.token_urlsafe(15), variable="BOSUN_DATA_DIR"
        )
    with transaction.atomic():
        users.objects.create_superuser(username=ADMIN_USERNAME, email="", password=password)
    return FirstAdmin(created=True, generated_password=generated, password_file=password_file)


def database_prepare(*, admin_password: str | None, data_dir: Path) -> FirstAdmin:
    """Apply pending migrations and ensure the first admin: every start of the embedded stack,
    and each production release (`manage.py bootstrap`)."""
    executor = MigrationExecutor(connections["default"])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", interactive=False, verbosity=0)
    access_services.builtin_policies_sync()
    return first_admin_ensure(password=admin_password, data_dir=data_dir)


def system_check_request(*, actor: User) -> SystemCheck:
    with transaction.atomic():
        check = SystemCheck.objects.create(requested_by=actor)
        audit_record(
            principal=actor.get_username(),
            user_id=actor.pk,
            action="bosun:RunSystemCheck",
            outcome="success",
            params={"SystemCheckId": check.pk},
            face="web",
        )
        enqueue_on_commit(RUN_SYSTEM_CHECK_TASK, check_id=check.pk, actor_id=actor.pk)
        realtime.publish_on_commit(
            realtime.user_group(actor.pk), "system_check", _check_event(check)
        )
    return check


def system_check_run(*, check_id: int) -> SystemCheck | None:
    """Run the checks from the worker's side and publish the outcome to whoever asked."""
    started_at = timezone.now()
    results = {name: result.as_dict() for name, result in health.check_all(celery_app).items()}
    passed = all(result["ok"] for result in results.values())
    with transaction.atomic():
        check = SystemCheck.objects.select_for_update().filter(pk=check_id).first()
        if check is None or check.status != SystemCheck.Status.QUEUED:
            return check  # gone, or a redelivered task: the first result stands
        check.results = results
        check.status = SystemCheck.Status.PASSED if passed else SystemCheck.Status.FAILED
        check.started_at = started_at
        check.completed_at = timezone.now()
        check.worker = socket.gethostname()
        check.save(update_fields=["results", "status", "started_at", "completed_at", "worker"])
        if check.requested_by_id:
            realtime.publish_on_commit(
                realtime.user_group(check.requested_by_id), "system_check", _check_event(check)
            )
    return check


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    with transaction.atomic():
        heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
            hostname=hostname, defaults={"seen_at": timezone.now()}
        )
        realtime.publish_on_commit(
            realtime.BROADCAST_GROUP,
            "worker_heartbeat",
            {"hostname": hostname, "seen_at": heartbeat.seen_at.isoformat()},
        )
    return heartbeat


def _check_event(check: SystemCheck) -> dict:
    return {"id": check.pk, "status": check.status}
