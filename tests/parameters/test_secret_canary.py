"""A planted SecureString value never shows up in a log line, an audit row, any database
column, a webhook payload or a Celery message, whichever Parameter Store path it travels
(the pages and the API are checked by their own tests).

The canary is written, overwritten, read with and without decryption, by path, described,
listed in history, labelled, refused by the rules, referenced, expired by the policy task
and deleted; all the while every logger records at DEBUG, SQL with its parameters included.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from bosun.lib.errors import BosunError
from parameters import references, selectors, services, transfer
from parameters.enforcement import policies_enforce
from parameters.models import Parameter, ParameterNotice, ParameterVersion
from parameters.tasks import enforce_policies
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

CANARY = f"canary-{uuid.uuid4().hex}"


def encodings(secret: str) -> list[bytes]:
    """The canary as stored text might carry it: raw, hex, base64 (both alphabets)."""
    raw = secret.encode()
    return [raw, raw.hex().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


def planted_forms() -> list[bytes]:
    return [form for value in (CANARY, f"{CANARY}-v2") for form in encodings(value)]


@pytest.fixture
def every_log_record(caplog) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG on every logger, including those that do not propagate to the root."""
    loggers = [logging.getLogger()] + [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
    ]
    saved = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    # SQL with its parameters is logged (django.db.backends, DEBUG) only with a debug cursor.
    debug_cursor, connection.force_debug_cursor = connection.force_debug_cursor, True
    yield caplog
    connection.force_debug_cursor = debug_cursor
    for logger, level in saved:
        logger.setLevel(level)
        logger.removeHandler(caplog.handler)


def policies_text() -> str:
    expires = timezone.now() + timedelta(days=10)
    return json.dumps(
        [
            {
                "Type": "Expiration",
                "Version": "1.0",
                "Attributes": {"Timestamp": expires.isoformat()},
            },
            {
                "Type": "ExpirationNotification",
                "Version": "1.0",
                "Attributes": {"Before": 2, "Unit": "Days"},
            },
            {
                "Type": "NoChangeNotification",
                "Version": "1.0",
                "Attributes": {"After": 1, "Unit": "Days"},
            },
        ]
    )


def refused_quietly(call) -> None:
    with pytest.raises(BosunError) as caught:
        call()
    assert CANARY not in caught.value.message


@pytest.fixture
def planted(admin, hook, every_log_record) -> None:
    """Every path the canary can travel, with logs captured at DEBUG."""
    start = timezone.now()
    put = services.parameter_put
    put(principal=admin, name="/canary/db", value=CANARY, parameter_type="SecureString")
    put(principal=admin, name="/canary/db", value=f"{CANARY}-v2", overwrite=True)
    put(
        principal=admin,
        name="/canary/expiring",
        value=CANARY,
        parameter_type="SecureString",
        tier="Advanced",
        policies=policies_text(),
    )
    put(principal=admin, name="/canary/doomed", value=CANARY, parameter_type="SecureString")

    # Writes the rules refuse, each with the canary as the value.
    refused_quietly(
        lambda: put(
            principal=admin,
            name="/canary/patterned",
            value=CANARY,
            parameter_type="SecureString",
            allowed_pattern="^[0-9]+$",
        )
    )
    refused_quietly(
        lambda: put(
            principal=admin,
            name="/canary/huge",
            value=CANARY * 200,
            parameter_type="SecureString",
        )
    )
    refused_quietly(lambda: put(principal=admin, name="/canary/db", value=CANARY))
    refused_quietly(lambda: put(principal=admin, name="/canary/untyped", value=CANARY))

    # Reads, sealed and opened.
    for decrypt in (False, True):
        selectors.parameter_get(principal=admin, name="/canary/db", with_decryption=decrypt)
        selectors.parameter_get(principal=admin, name="/canary/db:1", with_decryption=decrypt)
        selectors.parameters_get(
            principal=admin, names=["/canary/db", "/canary/nope"], with_decryption=decrypt
        )
        selectors.parameters_by_path(
            principal=admin, path="/canary", recursive=True, with_decryption=decrypt
        )
        selectors.parameter_history(principal=admin, name="/canary/db", with_decryption=decrypt)
    selectors.parameters_describe(principal=admin)
    transfer.parameters_export(principal=admin, path="/canary", with_decryption=True)
    refused_quietly(
        lambda: references.references_resolve(principal=admin, text="{{ssm:/canary/db}}")
    )

    # Labels, then deletes, then the policy task (which expires one).
    services.parameter_label(principal=admin, name="/canary/db", labels=["prod"], version=1)
    services.parameter_unlabel(principal=admin, name="/canary/db", labels=["prod"], version=1)
    services.parameter_label(principal=admin, name="/canary/db", labels=["live"])
    services.parameter_delete(principal=admin, name="/canary/doomed")
    policies_enforce(now=start + timedelta(days=1, minutes=1))
    policies_enforce(now=start + timedelta(days=8, minutes=1))
    policies_enforce(now=start + timedelta(days=10, minutes=1))

    # Sanity: the paths above really ran.
    assert Parameter.objects.filter(name="/canary/db").exists()
    assert not Parameter.objects.filter(name__in=["/canary/doomed", "/canary/expiring"]).exists()
    assert set(ParameterNotice.objects.values_list("kind", flat=True)) == {
        "NoChangeNotification",
        "ExpirationNotification",
        "Expiration",
    }
    opened = selectors.parameter_get(principal=admin, name="/canary/db", with_decryption=True)
    assert opened.value == f"{CANARY}-v2"


def test_no_log_record_carries_the_canary(planted, every_log_record):
    records = every_log_record.get_records("setup")
    # The capture must have seen the SQL, or it would prove nothing.
    assert any(record.name == "django.db.backends" for record in records)
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.args!r} {record.__dict__!r}"
        for record in records
    ).encode()
    for form in planted_forms():
        assert form not in logged


def test_no_audit_row_carries_the_canary(planted):
    rows = list(AuditEvent.objects.values_list())
    actions = {event.action for event in AuditEvent.objects.all()}
    assert {"ssm:PutParameter", "kms:Decrypt", "ssm:DeleteParameter"} <= actions
    dumped = repr(rows).encode()
    for form in planted_forms():
        assert form not in dumped


def table_values() -> Iterator[tuple[str, str, bytes]]:
    """Every value of every row of every table, as the bytes it is stored as."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            columns = [column[0] for column in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, bytes | memoryview | bytearray):
                        yield table, column, bytes(value)
                    elif value is not None:
                        yield table, column, str(value).encode()


def test_no_database_column_holds_the_canary(planted):
    values = list(table_values())
    tables = {table for table, _, _ in values}
    assert {
        "parameters_parameter",
        "parameters_parameterversion",
        "parameters_parameternotice",
        "webhooks_webhookdelivery",
        "audit_auditevent",
    } <= tables
    assert ParameterVersion.objects.filter(ciphertext__isnull=False).count() == 2
    for form in planted_forms():
        leaks = sorted({f"{table}.{column}" for table, column, value in values if form in value})
        assert not leaks, f"the canary is stored in plaintext in {leaks}"


def test_no_webhook_payload_carries_the_canary(planted):
    payloads = list(WebhookDelivery.objects.values_list("event_type", "payload"))
    assert {event for event, _ in payloads} >= {
        "parameter.created",
        "parameter.updated",
        "parameter.labeled",
        "parameter.unlabeled",
        "parameter.deleted",
        "parameter.policy.no_change_notification",
        "parameter.policy.expiration_notification",
        "parameter.policy.expired",
    }
    for form in planted_forms():
        assert not any(form in payload.encode() for _, payload in payloads)


@pytest.mark.django_db(transaction=True)
def test_no_celery_message_carries_the_canary(admin, hook):
    """Real commits, so the work queued after them is really published to the broker; the
    policy task's and the webhook worker's messages are captured as Celery publishes them."""
    published: list[bytes] = []

    def capture(sender=None, body=None, headers=None, **kwargs) -> None:
        published.append(repr((sender, body, headers)).encode())

    before_task_publish.connect(capture)
    try:
        services.parameter_put(
            principal=admin, name="/canary/queued", value=CANARY, parameter_type="SecureString"
        )
        services.parameter_put(
            principal=admin, name="/canary/queued", value=f"{CANARY}-v2", overwrite=True
        )
        selectors.parameter_get(principal=admin, name="/canary/queued", with_decryption=True)
        services.parameter_delete(principal=admin, name="/canary/queued")
        enforce_policies.delay()
    finally:
        before_task_publish.disconnect(capture)
    # The webhook worker was woken after each commit, and the policy task was sent.
    assert len(published) >= 4
    for form in planted_forms():
        assert not any(form in message for message in published)
