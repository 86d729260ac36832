"""Parameter policies as a write gives them: AWS's error type for each way they can be wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from parameters import policies
from parameters.models import Parameter
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
FUTURE = "2030-02-01T00:00:00.000Z"


def expiration(timestamp: object = FUTURE) -> dict:
    return {"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": timestamp}}


def notification(before: object = 5, unit: object = "Days") -> dict:
    return {
        "Type": "ExpirationNotification",
        "Version": "1.0",
        "Attributes": {"Before": before, "Unit": unit},
    }


def no_change(after: object = 30, unit: object = "Days") -> dict:
    return {
        "Type": "NoChangeNotification",
        "Version": "1.0",
        "Attributes": {"After": after, "Unit": unit},
    }


def parse(*items: object) -> list[dict]:
    return policies.parse_policies(json.dumps(list(items)), now=NOW)


def parse_refused(aws_code: str, *items: object) -> str:
    return refused(aws_code, lambda: parse(*items))


def test_the_three_policy_types_parse_into_what_the_task_needs():
    parsed = parse(expiration(), notification("5", "Days"), no_change(12, "Hours"))
    assert [p["PolicyType"] for p in parsed] == [
        "Expiration",
        "ExpirationNotification",
        "NoChangeNotification",
    ]
    assert all(p["PolicyStatus"] == "Pending" for p in parsed)
    assert parsed[0]["timestamp"] == "2030-02-01T00:00:00+00:00"
    assert parsed[1]["seconds"] == 5 * 86400
    assert parsed[2]["seconds"] == 12 * 3600
    assert json.loads(parsed[0]["PolicyText"]) == expiration()


@pytest.mark.parametrize("raw", [None, "", "[]"])
def test_no_policies_is_an_empty_list(raw):
    assert policies.parse_policies(raw, now=NOW) == []


def test_a_single_policy_object_is_taken_as_a_list_of_one():
    assert len(policies.parse_policies(json.dumps(expiration()), now=NOW)) == 1


@pytest.mark.parametrize("policy_type", ["Rotation", "expiration", None])
def test_an_unknown_policy_type_is_an_invalid_policy_type(policy_type):
    message = parse_refused("InvalidPolicyTypeException", {**expiration(), "Type": policy_type})
    assert message == (
        f"The policy type {policy_type!r} is not supported. Supported types: Expiration, "
        "ExpirationNotification, NoChangeNotification."
    )


@pytest.mark.parametrize("timestamp", ["next tuesday", "2030-13-01T00:00:00Z", 1893456000])
def test_a_timestamp_that_is_not_iso_8601_is_an_invalid_policy_attribute(timestamp):
    message = parse_refused("InvalidPolicyAttributeException", expiration(timestamp))
    assert message.startswith("Expiration: Timestamp")


def test_a_timestamp_in_the_past_is_an_invalid_policy_attribute():
    message = parse_refused("InvalidPolicyAttributeException", expiration("2029-12-31T00:00:00Z"))
    assert message == (
        "Expiration: Timestamp 2029-12-31T00:00:00Z is in the past; give a time in the future."
    )


def test_a_timestamp_without_a_zone_is_read_in_the_zone_of_now():
    [parsed] = parse(expiration("2030-01-02T00:00:00"))
    assert parsed["timestamp"] == "2030-01-02T00:00:00+00:00"


@pytest.mark.parametrize("unit", ["Weeks", "days", None])
def test_a_unit_other_than_days_or_hours_is_an_invalid_policy_attribute(unit):
    message = parse_refused("InvalidPolicyAttributeException", no_change(30, unit))
    assert message == "NoChangeNotification: Unit must be Days or Hours."


@pytest.mark.parametrize("amount", ["1.5", 2.5, "ten", 0, -3, True, None])
def test_an_amount_that_is_not_a_whole_number_of_at_least_one_is_an_invalid_attribute(amount):
    message = parse_refused("InvalidPolicyAttributeException", expiration(), notification(amount))
    assert message == ("ExpirationNotification: Before must be a whole number of days, at least 1.")


def test_attributes_must_be_exactly_those_of_the_type():
    message = parse_refused(
        "InvalidPolicyAttributeException",
        {"Type": "NoChangeNotification", "Version": "1.0", "Attributes": {"After": 3}},
    )
    assert message == "NoChangeNotification: Attributes must be exactly After, Unit."


def test_a_version_other_than_1_0_is_an_invalid_policy_attribute():
    message = parse_refused("InvalidPolicyAttributeException", {**expiration(), "Version": "2.0"})
    assert message == "Expiration: the policy Version must be 1.0."


def test_text_that_is_not_json_is_an_invalid_policy_attribute():
    message = refused(
        "InvalidPolicyAttributeException",
        lambda: policies.parse_policies("[{not json", now=NOW),
    )
    assert message == (
        "Policies must be a JSON array of policy objects; the text is not valid JSON."
    )


def test_more_than_ten_policies_exceed_the_limit():
    message = parse_refused("PoliciesLimitExceededException", *([no_change()] * 11))
    assert message == (
        "You specified more than the maximum number of allowed policies for the parameter. "
        "The maximum is 10."
    )


def test_a_policy_type_given_twice_is_incompatible():
    message = parse_refused("IncompatiblePolicyException", no_change(1), no_change(2))
    assert message == "There is more than one NoChangeNotification policy: give each type once."


def test_an_expiration_notification_needs_an_expiration():
    message = parse_refused("IncompatiblePolicyException", notification())
    assert message == (
        "An ExpirationNotification policy needs an Expiration policy to count back from."
    )


def test_a_write_with_bad_policies_writes_nothing(put):
    policy_text = json.dumps([{"Type": "Rotation", "Version": "1.0", "Attributes": {}}])
    refused(
        "InvalidPolicyTypeException",
        lambda: put("/pol/bad", "v", tier="Advanced", policies=policy_text),
    )
    assert not Parameter.objects.exists()


def test_a_write_with_policies_schedules_the_first_due_time(put):
    soon = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    text = json.dumps(
        [
            {"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": soon}},
            notification(2, "Days"),
        ]
    )
    put("/pol/due", "v", tier="Advanced", policies=text)
    parameter = Parameter.objects.get()
    expires = datetime.fromisoformat(soon)
    assert parameter.next_policy_at == expires - timedelta(days=2)


def test_an_overwrite_without_policies_keeps_them_and_an_empty_text_removes_them(put):
    put("/pol/keep", "v", tier="Advanced", policies=json.dumps([no_change(3)]))
    put("/pol/keep", "w", None, overwrite=True)
    assert [p["PolicyType"] for p in Parameter.objects.get().policies] == ["NoChangeNotification"]
    put("/pol/keep", "x", None, overwrite=True, policies="[]")
    parameter = Parameter.objects.get()
    assert (parameter.policies, parameter.next_policy_at) == ([], None)
