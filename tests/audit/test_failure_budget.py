"""Failed authentications are audited within a budget (audit.failures): one by one up to the
budget, then one summary, then only counted, per source and for all sources together, per
minute; the refusal itself never changes, on any face."""

from __future__ import annotations

import json
import logging
import os

import pytest
from django.urls import reverse

from audit import failures
from audit.failures import Verdict, audit_failed_authentication
from audit.models import AuditEvent
from tests.factories import UserFactory
from tests.support.cluster import claimed_redis_database, shell_on_postgresql

pytestmark = pytest.mark.django_db


def fail(source: str = "203.0.113.7") -> Verdict:
    return audit_failed_authentication(
        principal="access-key:BKIAEXAMPLE",
        action="bosun:Authenticate",
        outcome="denied",
        error_code="InvalidSignatureException",
        source_ip=source,
        face="aws",
    )


def denied(source: str | None = None) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(outcome="denied").order_by("sequence")
    return list(events if source is None else events.filter(source_ip=source))


@pytest.fixture
def budget(monkeypatch):
    """A small budget: 3 per source, 5 in all, a minute at a settable clock."""
    monkeypatch.setattr(failures, "FAILURES_PER_SOURCE", 3)
    monkeypatch.setattr(failures, "FAILURES_TOTAL", 5)
    clock = {"now": 1_800_000_000.0}
    monkeypatch.setattr(failures.time, "time", lambda: clock["now"])
    return clock


def test_the_budget_records_each_failure_then_one_summary_then_counts_the_rest(budget):
    verdicts = [fail() for _ in range(5)]
    assert verdicts == [Verdict.RECORD] * 3 + [Verdict.SUMMARY, Verdict.COUNTED]
    events = denied()
    assert len(events) == 4
    assert all(event.params_json == "{}" for event in events[:3])
    summary = events[3]
    assert (summary.action, summary.error_code, summary.source_ip) == (
        "bosun:Authenticate",
        "InvalidSignatureException",
        "203.0.113.7",
    )
    assert "more than 3 failed authentications from 203.0.113.7" in summary.params_json
    assert "counted, not recorded one by one" in summary.params_json


def test_each_source_has_its_own_budget_and_all_sources_share_one(budget):
    assert [fail("198.51.100.1") for _ in range(3)] == [Verdict.RECORD] * 3
    assert [fail("198.51.100.2") for _ in range(3)] == [
        Verdict.RECORD,
        Verdict.RECORD,
        Verdict.SUMMARY,  # the 6th failure in all: past the total of 5
    ]
    assert fail("198.51.100.3") is Verdict.COUNTED
    summary = denied()[-1]
    assert "more than 5 failed authentications from all sources" in summary.params_json
    assert len(denied()) == 6


def test_a_new_minute_starts_a_new_budget(budget):
    for _ in range(6):
        fail()
    budget["now"] += failures.WINDOW_SECONDS
    assert fail() is Verdict.RECORD
    assert len(denied()) == 5


def test_when_the_cache_cannot_count_every_failure_is_recorded(budget, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(failures.cache, "incr", broken)
    with caplog.at_level(logging.WARNING, logger="audit.failures"):
        assert [fail() for _ in range(6)] == [Verdict.RECORD] * 6
    assert len(denied()) == 6
    assert "could not count" in caplog.text


def test_the_log_says_how_many_were_counted_at_every_tenfold(budget, caplog):
    with caplog.at_level(logging.WARNING, logger="audit.failures"):
        for _ in range(3 + 100):
            fail()
    counted = [record.getMessage() for record in caplog.records]
    assert counted == [
        "13 failed authentications from 203.0.113.7 within 60 s (past the audit budget: "
        "counted only)",
        "103 failed authentications from 203.0.113.7 within 60 s (past the audit budget: "
        "counted only)",
    ]


def test_the_shipped_budget_is_per_minute_and_generous_for_people():
    assert failures.WINDOW_SECONDS == 60
    assert failures.FAILURES_PER_SOURCE == 30
    assert failures.FAILURES_TOTAL == 600


# --- Every face keeps refusing past the budget --------------------------------------------------


def test_the_sign_in_page_keeps_refusing_past_the_budget(client, budget):
    UserFactory(username="ada")
    for _ in range(5):
        response = client.post(
            reverse("login"), {"username": "ada", "password": "wrong"}, REMOTE_ADDR="192.0.2.9"
        )
        assert response.status_code == 200 and not response.wsgi_request.user.is_authenticated
    events = denied("192.0.2.9")
    assert [event.action for event in events] == ["bosun:SignIn"] * 4
    assert "suppressed" in events[-1].params_json


def test_the_rest_api_keeps_refusing_past_the_budget(client, budget):
    for _ in range(5):
        response = client.get(
            "/api/v1/me",
            HTTP_AUTHORIZATION="Bearer BKIAAAAAAAAAAAAAAAAA:" + "x" * 40,
            REMOTE_ADDR="192.0.2.10",
        )
        assert response.status_code == 401
    assert [event.face for event in denied("192.0.2.10")] == ["api"] * 4


def test_the_aws_endpoint_keeps_refusing_past_the_budget(client, budget):
    authorization = (
        "AWS4-HMAC-SHA256 Credential=BKIAAAAAAAAAAAAAAAAA/20261127/us-east-1/ssm/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    for _ in range(5):
        response = client.post(
            "/",
            b"{}",
            content_type="application/x-amz-json-1.1",
            HTTP_X_AMZ_TARGET="AmazonSSM.GetParameter",
            HTTP_AUTHORIZATION=authorization,
            HTTP_X_AMZ_DATE="20261127T000000Z",
            REMOTE_ADDR="192.0.2.11",
        )
        assert response.status_code == 400
        assert json.loads(response.content)["__type"] in {
            "IncompleteSignatureException",
            "InvalidSignatureException",
            "UnrecognizedClientException",
        }
    events = denied("192.0.2.11")
    assert [event.face for event in events] == ["aws"] * 4
    assert "suppressed" in events[-1].params_json


# --- Production: the counters are Redis's, shared by every process --------------------------

SHARED_COUNT = """
import json
from audit import failures
failures.time.time = lambda: 1_800_000_000.0  # both processes in the same minute
verdicts = [
    failures.audit_failed_authentication(
        principal="anonymous", action="bosun:Authenticate", outcome="denied",
        error_code="MissingAuthenticationTokenException", source_ip="203.0.113.9", face="aws",
    ).value
    for _ in range(20)
]
from django.core.cache import caches
print(json.dumps({"verdicts": verdicts, "cache": type(caches["default"]).__name__}))
"""


@pytest.mark.integration
def test_on_the_production_stores_every_process_counts_against_one_budget(tmp_path):
    """Two processes fail 20 times each from one address: together past the 30 a minute."""
    with claimed_redis_database(os.environ["BOSUN_TEST_REDIS_URL"]) as redis_url:
        second = shell_on_postgresql(SHARED_COUNT, tmp_path, runs=2, REDIS_URL=redis_url)
    assert second["cache"] == "RedisCache"
    assert second["verdicts"] == ["record"] * 10 + ["summary"] + ["counted"] * 9
