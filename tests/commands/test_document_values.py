"""Parameter values: checked against their definitions, defaults taken, substituted in steps."""

from __future__ import annotations

import pytest

from commands.documents.values import (
    MAX_VALUE_CHARS,
    ParameterSpec,
    substitute,
    value_parse,
    values_resolve,
)
from commands.exceptions import InvalidParameters


def spec(kind: str = "String", **rules) -> ParameterSpec:
    if "default" in rules:
        rules["has_default"] = True
    return ParameterSpec(name="p", type=kind, **rules)


def problem(parameter: ParameterSpec, raw) -> str:
    with pytest.raises(ValueError) as refused:
        value_parse(parameter, raw)
    return str(refused.value)


# --- String ---------------------------------------------------------------------------------


def test_a_string_takes_one_value_given_bare_or_in_a_list():
    assert value_parse(spec(), "hello") == "hello"
    assert value_parse(spec(), ["hello"]) == "hello"


def test_a_string_refuses_several_values_or_non_text():
    assert "exactly one value, not 2" in problem(spec(), ["a", "b"])
    assert "exactly one value, not 0" in problem(spec(), [])
    assert "takes text" in problem(spec(), [5])


def test_a_string_must_be_one_of_its_allowed_values():
    allowed = spec(allowed_values=("start", "stop"))
    assert value_parse(allowed, ["stop"]) == "stop"
    assert "one of: start, stop" in problem(allowed, ["restart"])


def test_a_string_must_match_its_allowed_pattern_whole_and_the_value_is_not_echoed():
    digits = spec(allowed_pattern="[0-9]+")
    assert value_parse(digits, "123") == "123"
    message = problem(digits, "123abc-secretish")
    assert "allowed pattern [0-9]+" in message
    assert "secretish" not in message


def test_a_string_keeps_its_character_bounds():
    bounded = spec(min_chars=2, max_chars=4)
    assert value_parse(bounded, "ab") == "ab"
    assert value_parse(bounded, "abcd") == "abcd"
    assert "at least 2 characters" in problem(bounded, "a")
    assert "at most 4 characters" in problem(bounded, "abcde")


def test_no_value_is_longer_than_64_kib_of_characters():
    assert f"at most {MAX_VALUE_CHARS}" in problem(spec(), "x" * (MAX_VALUE_CHARS + 1))


# --- StringList -----------------------------------------------------------------------------


def test_a_string_list_takes_a_list_or_one_bare_text():
    assert value_parse(spec("StringList"), ["a", "b"]) == ["a", "b"]
    assert value_parse(spec("StringList"), "a") == ["a"]


def test_a_string_list_keeps_its_item_bounds():
    bounded = spec("StringList", min_items=1, max_items=2)
    assert "at least 1 item(s) are required, 0 given" in problem(bounded, [])
    assert "at most 2 item(s) are allowed, 3 given" in problem(bounded, ["a", "b", "c"])


def test_every_item_of_a_string_list_is_checked():
    checked = spec("StringList", allowed_pattern="[a-z]+", max_chars=3)
    assert value_parse(checked, ["ab", "cd"]) == ["ab", "cd"]
    assert "allowed pattern" in problem(checked, ["ab", "C"])
    assert "at most 3 characters" in problem(checked, ["ab", "abcd"])
    assert "every item of a StringList is text" in problem(checked, ["ab", 3])
    assert "one of: x" in problem(spec("StringList", allowed_values=("x",)), ["x", "y"])


# --- Integer and Boolean --------------------------------------------------------------------


def test_an_integer_takes_whole_numbers_as_text_or_number():
    assert value_parse(spec("Integer"), ["42"]) == 42
    assert value_parse(spec("Integer"), ["-3"]) == -3
    assert value_parse(spec("Integer"), 7) == 7


@pytest.mark.parametrize("raw", [["4.2"], ["ten"], [""], [True], [1.5], [["1"]]])
def test_an_integer_refuses_anything_else(raw):
    problem(spec("Integer"), raw)


def test_an_integer_is_compared_with_its_allowed_values_as_a_number():
    allowed = spec("Integer", allowed_values=("1", "2"))
    assert value_parse(allowed, ["02"]) == 2
    assert "one of: 1, 2" in problem(allowed, ["3"])


@pytest.mark.parametrize(
    ("raw", "flag"), [(["true"], True), (["False"], False), ([True], True), ("TRUE", True)]
)
def test_a_boolean_takes_true_or_false_in_any_case(raw, flag):
    assert value_parse(spec("Boolean"), raw) is flag


@pytest.mark.parametrize("raw", [["yes"], ["1"], [1], [""]])
def test_a_boolean_refuses_anything_else(raw):
    assert "true or false" in problem(spec("Boolean"), raw)


# --- StringMap and MapList ------------------------------------------------------------------


def test_a_string_map_takes_a_json_object():
    assert value_parse(spec("StringMap"), ['{"a": "b"}']) == {"a": "b"}
    assert value_parse(spec("StringMap"), {"a": "b"}) == {"a": "b"}


@pytest.mark.parametrize(("raw", "why"), [(['["a"]'], "JSON object"), (["{nope"], "not JSON")])
def test_a_string_map_refuses_other_json_or_broken_json(raw, why):
    assert why in problem(spec("StringMap"), raw)


def test_a_map_list_takes_a_json_list_of_objects_within_its_bounds():
    bounded = spec("MapList", min_items=1, max_items=2)
    assert value_parse(bounded, ['[{"a": 1}, {"b": 2}]']) == [{"a": 1}, {"b": 2}]
    assert "at least 1" in problem(bounded, ["[]"])
    assert "at most 2" in problem(bounded, ['[{"a": 1}, {"b": 2}, {"c": 3}]'])
    assert "list of objects" in problem(bounded, ['[{"a": 1}, 2]'])
    assert "list of objects" in problem(bounded, ['{"a": 1}'])


# --- Resolving a send's values --------------------------------------------------------------


SPECS = {
    "commands": spec("StringList", min_items=1),
    "mode": spec(default="fast", allowed_values=("fast", "slow")),
    "retries": spec("Integer", default="3"),
    "dry": spec("Boolean", default=False),
}


def test_given_values_are_typed_and_missing_ones_take_their_defaults():
    assert values_resolve(SPECS, {"commands": ["ls"], "retries": ["5"]}) == {
        "commands": ["ls"],
        "mode": "fast",
        "retries": 5,
        "dry": False,
    }


def test_a_missing_required_parameter_is_refused_naming_it():
    with pytest.raises(InvalidParameters) as refused:
        values_resolve(SPECS, {})
    assert refused.value.field == "parameters.commands"
    assert "commands is required" in refused.value.message


def test_an_undeclared_parameter_is_refused_naming_what_the_document_defines():
    with pytest.raises(InvalidParameters) as refused:
        values_resolve(SPECS, {"commands": ["ls"], "speed": ["9"]})
    assert refused.value.field == "parameters.speed"
    assert "commands, mode, retries, dry" in refused.value.message


def test_a_document_without_parameters_refuses_any():
    with pytest.raises(InvalidParameters, match="no parameters"):
        values_resolve({}, {"x": ["1"]})


@pytest.mark.parametrize("raw", [5, None, {"a": "b"}, True])
def test_a_given_value_must_be_text_or_a_list(raw):
    with pytest.raises(InvalidParameters) as refused:
        values_resolve(SPECS, {"commands": ["ls"], "mode": raw})
    assert refused.value.field == "parameters.mode"


def test_a_bad_value_is_refused_naming_the_parameter_and_the_rule():
    with pytest.raises(InvalidParameters) as refused:
        values_resolve(SPECS, {"commands": ["ls"], "mode": ["warp"]})
    assert refused.value.field == "parameters.mode"
    assert refused.value.message == "Parameter mode: the value must be one of: fast, slow."


# --- Substitution ---------------------------------------------------------------------------


VALUES = {"commands": ["a", "b"], "dir": "/srv", "n": 3, "flag": True, "env": {"A": "1"}}


def test_a_text_that_is_only_a_placeholder_takes_the_value_itself():
    assert substitute("{{ commands }}", VALUES) == ["a", "b"]
    assert substitute(" {{n}} ", VALUES) == 3


def test_a_placeholder_inside_text_takes_the_value_as_text():
    assert substitute("cd {{ dir }} && run {{ n }} {{ flag }}", VALUES) == "cd /srv && run 3 true"
    assert substitute("x={{ commands }}", VALUES) == "x=a,b"
    assert substitute("env={{ env }}", VALUES) == 'env={"A":"1"}'


def test_a_list_placeholder_in_a_list_joins_the_list():
    assert substitute(["set -e", "{{ commands }}", "echo done"], VALUES) == [
        "set -e",
        "a",
        "b",
        "echo done",
    ]


def test_substitution_reaches_into_mappings_and_leaves_other_values():
    inputs = {"runCommand": "{{ commands }}", "workingDirectory": "{{ dir }}", "timeout": 60}
    assert substitute(inputs, VALUES) == {
        "runCommand": ["a", "b"],
        "workingDirectory": "/srv",
        "timeout": 60,
    }


def test_unknown_placeholders_and_parameter_references_are_left_as_written():
    text = "{{ other }} {{ssm:/a}} {{ssm-secure:/b}}"
    assert substitute(text, VALUES) == text
