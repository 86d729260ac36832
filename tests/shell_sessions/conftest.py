"""Session Manager fixtures: sessions, recordings written through the services, raw SQL."""

from __future__ import annotations

import json
from collections.abc import Callable

import factory
import pytest
from django.db import connection

from sessions.codes import new_session_id
from sessions.models import Session, SessionStatus
from sessions.services.recording import recording_append, recording_seal, recording_start
from tests.factories import ManagedNodeFactory, UserFactory


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    started_by = factory.SubFactory(UserFactory, username="ada")
    session_id = factory.LazyAttribute(lambda s: new_session_id(s.started_by.username))
    node = factory.SubFactory(ManagedNodeFactory)
    principal_arn = factory.LazyAttribute(
        lambda s: f"arn:aws:iam::000000000000:user/{s.started_by.username}"
    )
    principal_name = factory.LazyAttribute(lambda s: s.started_by.username)
    run_as = "ssm-user"
    status = SessionStatus.CONNECTED


@pytest.fixture
def session(db) -> Session:
    return SessionFactory()


def output_lines(*texts: str, start: float = 0.0) -> bytes:
    """Output events, one per text, a tenth of a second apart."""
    return b"".join(
        f'[{start + n / 10:.6f}, "o", {json.dumps(text, ensure_ascii=False)}]\n'.encode()
        for n, text in enumerate(texts)
    )


@pytest.fixture
def recorded(db) -> Callable[..., Session]:
    """`recorded(chunks=5, sealed=True)`: a session with a recording written through the
    services, chunk n holding the output "chunk n\\r\\n"."""

    def make(chunks: int = 5, *, sealed: bool = True, **fields) -> Session:
        session = SessionFactory(**fields)
        recording_start(
            session=session, width=80, height=24, term="xterm-256color", login_shell="bash"
        )
        for sequence in range(chunks):
            recording_append(
                session=session,
                sequence=sequence,
                events=output_lines(f"chunk {sequence}\r\n", start=sequence),
            )
        if sealed:
            session.status = SessionStatus.TERMINATED
            session.save(update_fields=["status"])
            recording_seal(session=session)
        return session

    return make


def execute(sql: str, params: tuple = ()) -> None:
    """Tamper as someone with database access would: plain SQL, no ORM in the way."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
