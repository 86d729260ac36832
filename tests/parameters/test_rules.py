"""Types, data types, tiers and allowed patterns, as a write meets them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from parameters import rules, selectors
from parameters.models import Parameter, ParameterVersion
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db

STANDARD_TOO_BIG = (
    "Standard tier parameters support a maximum parameter value of 4096 characters. To create "
    "a larger parameter value, upgrade the parameter to use the advanced-parameter tier."
)
DOWNGRADE = (
    "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the "
    "advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the "
    "advanced parameter and recreate it as a standard parameter."
)


def expiring_in(days: int = 30) -> str:
    moment = timezone.now() + timedelta(days=days)
    return json.dumps(
        [{"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": moment.isoformat()}}]
    )


# --- Types ----------------------------------------------------------------------------------


def test_a_new_parameter_needs_a_type(put):
    message = refused("ValidationException", lambda: put("/t/none", "v", None))
    assert message == "A parameter type is required when you create a parameter."
    assert not Parameter.objects.exists()


@pytest.mark.parametrize("parameter_type", ["string", "Integer", ""])
def test_an_unknown_type_is_unsupported(put, parameter_type):
    message = refused("UnsupportedParameterType", lambda: put("/t/x", "v", parameter_type))
    assert message == (
        f"The parameter type {parameter_type!r} is not supported: use String, StringList or "
        "SecureString."
    )


def test_a_string_list_is_comma_separated_items_none_of_them_empty(put, admin):
    assert put("/t/list", "a,b,c", "StringList").version == 1
    for value in ("a,,b", "a,", ",a", ","):
        message = refused("ValidationException", lambda v=value: put("/t/bad", v, "StringList"))
        assert message == "A StringList is comma-separated values; none of them may be empty."
    assert selectors.parameter_get(principal=admin, name="/t/list").value == "a,b,c"


def test_an_empty_value_is_refused(put):
    message = refused("ValidationException", lambda: put("/t/empty", ""))
    assert message == "The parameter value must not be empty."


def test_an_overwrite_without_a_type_keeps_the_type(put, admin):
    put("/t/keep", "a,b", "StringList")
    put("/t/keep", "c,d", None, overwrite=True)
    assert selectors.parameter_get(principal=admin, name="/t/keep").type == "StringList"


# --- Data types -----------------------------------------------------------------------------


def test_the_data_type_is_text_by_default(put):
    put("/dt/plain", "anything at all")
    assert Parameter.objects.get().data_type == "text"


@pytest.mark.parametrize("image", ["ami-12345678", "ami-0123456789abcdef0"])
def test_an_image_data_type_holds_an_image_id(put, image):
    put("/dt/ami", image, data_type="aws:ec2:image")
    assert Parameter.objects.get().data_type == "aws:ec2:image"


@pytest.mark.parametrize("value", ["ubuntu", "ami-123", "ami-0123456789ABCDEF0", "xami-12345678"])
def test_an_image_data_type_refuses_anything_but_an_image_id(put, value):
    message = refused(
        "ValidationException", lambda: put("/dt/ami", value, data_type="aws:ec2:image")
    )
    assert message == (
        "A parameter of data type aws:ec2:image holds an image id such as ami-0123456789abcdef0."
    )


@pytest.mark.parametrize("parameter_type", ["StringList", "SecureString"])
def test_the_image_data_type_is_only_for_strings(put, parameter_type):
    message = refused(
        "ValidationException",
        lambda: put("/dt/ami", "ami-12345678", parameter_type, data_type="aws:ec2:image"),
    )
    assert message == "The aws:ec2:image data type is only for String parameters."


@pytest.mark.parametrize("data_type", ["TEXT", "aws:ssm:integration", "json"])
def test_an_unsupported_data_type_is_named_in_the_refusal(put, data_type):
    message = refused("ValidationException", lambda: put("/dt/x", "v", data_type=data_type))
    assert message == (
        f"The following data type is not supported: {data_type} (Data type names are all "
        "lowercase.)"
    )


def test_an_overwrite_keeps_the_image_data_type_and_checks_the_new_value_against_it(put):
    put("/dt/ami", "ami-12345678", data_type="aws:ec2:image")
    refused("ValidationException", lambda: put("/dt/ami", "latest", None, overwrite=True))
    put("/dt/ami", "ami-87654321", None, overwrite=True)
    assert Parameter.objects.get().data_type == "aws:ec2:image"


# --- Tiers ----------------------------------------------------------------------------------


def test_a_standard_value_may_be_4096_bytes_and_no_more(put):
    assert put("/tier/s", "x" * 4096).tier == "Standard"
    assert refused("ValidationException", lambda: put("/tier/t", "x" * 4097)) == STANDARD_TOO_BIG


def test_the_size_limit_counts_bytes_not_characters(put):
    refused("ValidationException", lambda: put("/tier/utf8", "é" * 2049))  # 4098 bytes


def test_an_advanced_value_may_be_8192_bytes_and_no_more(put):
    assert put("/tier/a", "x" * 8192, tier="Advanced").tier == "Advanced"
    message = refused("ValidationException", lambda: put("/tier/b", "x" * 8193, tier="Advanced"))
    assert (
        message == "Advanced tier parameters support a maximum parameter value of 8192 characters."
    )


def test_intelligent_tiering_picks_standard_for_a_small_value_without_policies(put):
    assert put("/tier/it", "small", tier="Intelligent-Tiering").tier == "Standard"


def test_intelligent_tiering_picks_advanced_for_a_large_value(put):
    assert put("/tier/it", "x" * 4097, tier="Intelligent-Tiering").tier == "Advanced"


def test_intelligent_tiering_picks_advanced_for_a_parameter_with_policies(put):
    result = put("/tier/it", "small", tier="Intelligent-Tiering", policies=expiring_in())
    assert result.tier == "Advanced"


def test_intelligent_tiering_keeps_an_advanced_parameter_advanced(put):
    put("/tier/it", "x" * 5000, tier="Intelligent-Tiering")
    assert put("/tier/it", "small", None, overwrite=True, tier="Intelligent-Tiering").tier == (
        "Advanced"
    )


def test_an_advanced_parameter_cannot_go_back_to_standard(put):
    put("/tier/down", "v", tier="Advanced")
    message = refused(
        "ValidationException", lambda: put("/tier/down", "w", None, overwrite=True, tier="Standard")
    )
    assert message == DOWNGRADE
    assert Parameter.objects.get().version == 1


def test_an_overwrite_without_a_tier_keeps_advanced(put):
    put("/tier/keep", "v", tier="Advanced")
    result = put("/tier/keep", "w", None, overwrite=True)
    assert result.tier == "Advanced"
    assert ParameterVersion.objects.get(version=2).tier == "Advanced"


def test_a_standard_parameter_can_be_upgraded_to_advanced(put):
    put("/tier/up", "v")
    assert put("/tier/up", "x" * 5000, None, overwrite=True, tier="Advanced").tier == "Advanced"


def test_policies_need_the_advanced_tier(put):
    message = refused("ValidationException", lambda: put("/tier/p", "v", policies=expiring_in()))
    assert message == (
        "Parameter policies are supported only in the advanced tier: set the tier to Advanced "
        "or Intelligent-Tiering."
    )
    assert put("/tier/p", "v", tier="Advanced", policies=expiring_in()).tier == "Advanced"


def test_an_unknown_tier_is_refused_in_words_terraform_recognises(put):
    message = refused("ValidationException", lambda: put("/tier/x", "v", tier="Premium"))
    assert "Tier is not supported" in message
    assert "Premium" in message


# --- Allowed patterns -----------------------------------------------------------------------


def test_a_value_must_match_the_allowed_pattern(put):
    put("/ap/port", "8080", allowed_pattern=r"^\d+$")
    message = refused(
        "ParameterPatternMismatchException",
        lambda: put("/ap/other", "eighty", allowed_pattern=r"^\d+$"),
    )
    assert message == r"Parameter value, cannot be validated against allowedPattern: ^\d+$"


def test_an_overwrite_is_checked_against_the_pattern_it_keeps(put, admin):
    put("/ap/port", "8080", allowed_pattern=r"^\d+$")
    refused(
        "ParameterPatternMismatchException",
        lambda: put("/ap/port", "not-a-port", None, overwrite=True),
    )
    assert put("/ap/port", "9090", None, overwrite=True).version == 2
    assert Parameter.objects.get().allowed_pattern == r"^\d+$"


def test_an_overwrite_may_replace_the_pattern_and_is_checked_against_the_new_one(put):
    put("/ap/port", "8080", allowed_pattern=r"^\d+$")
    put("/ap/port", "http", None, overwrite=True, allowed_pattern=r"^[a-z]+$")
    refused(
        "ParameterPatternMismatchException", lambda: put("/ap/port", "80", None, overwrite=True)
    )


def test_a_secure_string_is_checked_against_its_pattern_too(put):
    refused(
        "ParameterPatternMismatchException",
        lambda: put("/ap/secret", "short", "SecureString", allowed_pattern=r"^.{12,}$"),
    )


def test_an_invalid_regular_expression_is_an_invalid_allowed_pattern(put):
    message = refused(
        "InvalidAllowedPatternException", lambda: put("/ap/bad", "v", allowed_pattern="([a-z")
    )
    assert message.startswith("The allowed pattern ([a-z is not a valid regular expression")


def test_an_empty_pattern_as_terraform_sends_it_means_no_pattern(put):
    put("/ap/tf", "anything", allowed_pattern="")
    assert Parameter.objects.get().allowed_pattern == ""
    put("/ap/tf", "anything else", None, overwrite=True, allowed_pattern="")
    assert Parameter.objects.get().version == 2


def test_a_pattern_mismatch_never_repeats_the_value(put):
    secret = "sk_live_do_not_echo_51Hx"
    message = refused(
        "ParameterPatternMismatchException",
        lambda: put("/ap/key", secret, "SecureString", allowed_pattern=r"^pk_"),
    )
    assert secret not in message
    assert "do_not_echo" not in message


def test_a_pattern_over_1024_characters_is_refused(put):
    message = refused(
        "ValidationException", lambda: put("/ap/long", "a", allowed_pattern="a" * 1025)
    )
    assert message == "The allowed pattern must be at most 1024 characters long."


def test_a_description_over_1024_characters_is_refused(put):
    message = refused("ValidationException", lambda: put("/d/long", "a", description="d" * 1025))
    assert message == "The description must be at most 1024 characters long."


def test_rules_report_the_size_of_a_value_in_utf8_bytes():
    assert rules.value_size("é") == 2
    assert rules.value_size("abc") == 3
