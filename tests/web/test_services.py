import stat

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from web import services
from web.models import SystemCheck, WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_the_first_admin_gets_a_generated_password_kept_private(tmp_path):
    admin = services.first_admin_ensure(password=None, data_dir=tmp_path)
    assert admin.created and admin.generated_password
    assert admin.password_file.read_text().strip() == admin.generated_password
    assert stat.S_IMODE(admin.password_file.stat().st_mode) == 0o600
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(admin.generated_password)


def test_the_first_admin_takes_the_configured_password_and_writes_no_file(tmp_path):
    admin = services.first_admin_ensure(password="from-the-env-123", data_dir=tmp_path)
    assert admin.created and admin.generated_password is None
    assert not (tmp_path / services.ADMIN_PASSWORD_FILE).exists()
    assert get_user_model().objects.get(username="admin").check_password("from-the-env-123")


def test_an_existing_admin_is_left_alone(tmp_path):
    services.first_admin_ensure(password="first-password-1", data_dir=tmp_path)
    again = services.first_admin_ensure(password="second-password-2", data_dir=tmp_path)
    assert not again.created
    assert get_user_model().objects.get(username="admin").check_password("first-password-1")


def test_requesting_a_check_enqueues_its_task_only_after_commit(
    operator_user, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        services.enqueue_on_commit.__globals__["current_app"],
        "send_task",
        lambda name, kwargs: sent.append((name, kwargs)),
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        check = services.system_check_request(actor=operator_user)
    assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [
        (services.RUN_SYSTEM_CHECK_TASK, {"check_id": check.pk, "actor_id": operator_user.pk})
    ]
    assert check.status == SystemCheck.Status.QUEUED


def test_running_a_check_records_every_store(operator_user):
    check = SystemCheck.objects.create(requested_by=operator_user)
    done = services.system_check_run(check_id=check.pk)
    assert done.status == SystemCheck.Status.PASSED
    assert set(done.results) == {"database", "channel_layer", "broker"}
    assert done.round_trip_ms is not None and done.worker


def test_a_redelivered_check_task_keeps_the_first_result(operator_user):
    check = SystemCheck.objects.create(requested_by=operator_user)
    first = services.system_check_run(check_id=check.pk)
    second = services.system_check_run(check_id=check.pk)
    assert second.completed_at == first.completed_at


def test_a_check_that_no_longer_exists_is_ignored():
    assert services.system_check_run(check_id=987654) is None


def test_a_heartbeat_updates_one_row_per_host():
    services.worker_heartbeat_record(hostname="w1")
    services.worker_heartbeat_record(hostname="w1")
    services.worker_heartbeat_record(hostname="w2")
    assert WorkerHeartbeat.objects.count() == 2


def test_requesting_a_check_is_audited(operator_user):
    check = services.system_check_request(actor=operator_user)
    event = AuditEvent.objects.get(action="bosun:RunSystemCheck")
    assert (event.principal, event.outcome, event.params) == (
        "otto",
        "success",
        {"SystemCheckId": check.pk},
    )
