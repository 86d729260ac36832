"""Sessions as stored: ids, ARNs, defaults and the ranges the database enforces."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from sessions.codes import SESSION_ID_PATTERN, new_session_id, session_arn
from sessions.models import DEFAULT_DOCUMENT, Session, SessionStatus
from tests.shell_sessions.conftest import SessionFactory

pytestmark = pytest.mark.django_db


def test_a_session_id_is_the_username_and_17_lowercase_hex_digits():
    session_id = new_session_id("ada")
    assert SESSION_ID_PATTERN.match(session_id)
    prefix, suffix = session_id.rsplit("-", 1)
    assert prefix == "ada"
    assert len(suffix) == 17
    assert suffix == suffix.lower()


def test_characters_aws_refuses_in_a_session_id_become_dashes_and_long_names_are_cut():
    assert new_session_id("ada lovelace+ops").startswith("ada-lovelace-ops-")
    assert new_session_id("ada@example.org").startswith("ada@example.org-")
    long_id = new_session_id("x" * 200)
    assert len(long_id) == 96
    assert SESSION_ID_PATTERN.match(long_id)


def test_a_session_arn_names_the_session_in_this_region_and_account():
    assert session_arn("ada-0123456789abcdef0") == (
        "arn:aws:ssm:us-east-1:000000000000:session/ada-0123456789abcdef0"
    )


def test_the_app_has_its_own_label_beside_djangos_sessions():
    assert apps.get_app_config("shell_sessions").name == "sessions"
    assert apps.get_app_config("sessions").name == "django.contrib.sessions"
    assert Session._meta.db_table == "shell_sessions_session"


def test_a_new_session_connects_with_the_standard_shell_document_and_aws_defaults():
    session = SessionFactory(status=SessionStatus.CONNECTING)
    assert session.document_name == DEFAULT_DOCUMENT == "SSM-SessionManagerRunShell"
    assert session.idle_timeout_minutes == 20
    assert session.max_duration_minutes is None
    assert session.input_recorded is True
    assert not session.is_ended
    assert not session.is_sealed
    assert session.recording_header_data is None
    assert str(session) == session.session_id


@pytest.mark.parametrize("minutes", [0, 61])
def test_the_database_refuses_an_idle_timeout_outside_1_to_60_minutes(minutes):
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionFactory(idle_timeout_minutes=minutes)


@pytest.mark.parametrize("minutes", [0, 1441])
def test_the_database_refuses_a_maximum_duration_outside_1_to_1440_minutes(minutes):
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionFactory(max_duration_minutes=minutes)


def test_session_ids_are_unique():
    first = SessionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionFactory(session_id=first.session_id)


def test_a_node_with_sessions_cannot_be_deleted_out_from_under_their_recordings():
    session = SessionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        session.node.delete()
