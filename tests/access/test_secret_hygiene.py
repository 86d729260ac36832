"""A planted secret never shows up in logs, in the audit trail, or in the database in plaintext.

Planted: an access key's secret (created, then used on the API, right and wrong), a value
sealed by the key service, and the plaintext data key that sealed it.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from access import kms, services
from access.management.commands.createaccesskey import operator_principal
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

KEY_ID = "BKIAPLANTEDKEY000001"
SECRET = "PlantedSecretDoNotLeak0123456789abcdef+/"
SEALED_VALUE = b"planted-kms-value-never-in-plaintext"
ROW = {"parameter": "/hygiene/value", "version": "1"}


def encodings(secret: bytes) -> list[bytes]:
    """The secret as stored text might carry it: raw, hex, base64 (both alphabets)."""
    return [
        secret,
        secret.hex().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret),
    ]


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


@pytest.fixture
def planted(operator_user, every_log_record) -> bytes:
    """Create and use the secrets; returns the plaintext data key that sealed the value."""
    key, secret = services.access_key_create(
        principal=operator_principal(), user=operator_user, access_key_id=KEY_ID, secret=SECRET
    )
    assert secret == SECRET
    right = APIClient(HTTP_AUTHORIZATION=f"Bearer {KEY_ID}:{SECRET}")
    assert right.get(reverse("api-me")).status_code == 200
    wrong = APIClient(HTTP_AUTHORIZATION=f"Bearer {KEY_ID}:{SECRET[::-1]}")
    assert wrong.get(reverse("api-me")).status_code == 401
    services.access_key_set_status(principal=operator_principal(), access_key=key, active=False)
    assert right.get(reverse("api-me")).status_code == 401

    sealing = kms.key_create(description="hygiene", alias="alias/hygiene")
    blob = kms.value_encrypt(key=sealing, plaintext=SEALED_VALUE, context=ROW)
    assert kms.value_decrypt(blob=blob, context=ROW) == SEALED_VALUE
    data_key = sealing.data_keys.get()
    plaintext_key = kms._plaintext_data_key(
        data_key.pk, bytes(data_key.wrapped), sealing.key_id, data_key.generation
    )
    return plaintext_key


def planted_secrets(plaintext_key: bytes) -> list[bytes]:
    return [
        *encodings(SECRET.encode()),
        *encodings(SEALED_VALUE),
        *encodings(plaintext_key),
    ]


def test_no_log_record_carries_a_planted_secret(planted, every_log_record):
    records = every_log_record.get_records("setup")
    # The capture must have seen the key being used, or it would prove nothing.
    assert any(record.name == "django.db.backends" for record in records)
    assert any(record.name == "django.request" for record in records)  # the 401s
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.args!r} {record.__dict__!r}"
        for record in records
    ).encode()
    for secret in planted_secrets(planted):
        assert secret not in logged


def test_no_audit_column_carries_a_planted_secret(planted):
    rows = list(AuditEvent.objects.values_list())
    assert any("bosun:CreateAccessKey" in row for row in rows)
    dumped = repr(rows).encode()
    for secret in planted_secrets(planted):
        assert secret not in dumped


def table_bytes() -> Iterator[tuple[str, bytes]]:
    """Every row of every table, each value as the bytes it is stored as."""
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview | bytearray):
                        yield table, bytes(value)
                    elif value is not None:
                        yield table, str(value).encode()


def test_the_database_holds_no_planted_secret_in_plaintext(planted):
    values = list(table_bytes())
    tables = {table for table, _ in values}
    assert {"access_accesskey", "access_datakey", "audit_auditevent"} <= tables
    for secret in planted_secrets(planted):
        leaks = {table for table, value in values if secret in value}
        assert not leaks, f"a planted secret is stored in plaintext in {sorted(leaks)}"
