"""Reading and validating document text: JSON and YAML, where errors are, schema 2.2's rules."""

from __future__ import annotations

import copy
import hashlib
import json
from textwrap import dedent
from typing import Any

import pytest

from commands.documents.content import MAX_CONTENT_BYTES, content_hash, content_render
from commands.documents.schema import document_parse
from commands.exceptions import (
    InvalidDocumentContent,
    InvalidDocumentSchemaVersion,
    MaxDocumentSizeExceeded,
)

SIMPLE = {
    "schemaVersion": "2.2",
    "description": "Say hello.",
    "parameters": {
        "greeting": {"type": "String", "default": "hello", "allowedValues": ["hello", "hi"]},
        "names": {"type": "StringList", "minItems": 1},
    },
    "mainSteps": [
        {
            "action": "aws:runShellScript",
            "name": "greet",
            "inputs": {"runCommand": ["echo {{ greeting }} {{ names }}"], "timeoutSeconds": 60},
        }
    ],
}

SIMPLE_YAML = dedent(
    """\
    schemaVersion: "2.2"
    description: Say hello.
    parameters:
      greeting:
        type: String
        default: hello
        allowedValues: [hello, hi]
      names:
        type: StringList
        minItems: 1
    mainSteps:
      - action: aws:runShellScript
        name: greet
        inputs:
          runCommand:
            - echo {{ greeting }} {{ names }}
          timeoutSeconds: 60
    """
)


def as_json(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2)


def with_step(**changes: Any) -> dict[str, Any]:
    """SIMPLE with its first step changed (a value of None removes the key)."""
    body = copy.deepcopy(SIMPLE)
    for key, value in changes.items():
        if value is None:
            body["mainSteps"][0].pop(key, None)
        else:
            body["mainSteps"][0][key] = value
    return body


def with_inputs(**inputs: Any) -> dict[str, Any]:
    body = copy.deepcopy(SIMPLE)
    body["mainSteps"][0]["inputs"].update(inputs)
    return body


def refusal(content: str, content_format: str = "JSON", error=InvalidDocumentContent):
    with pytest.raises(error) as refused:
        document_parse(content, content_format)
    return refused.value


# --- Parsing --------------------------------------------------------------------------------


def test_a_json_document_parses_into_its_body_and_spec():
    body, spec = document_parse(as_json(SIMPLE), "JSON")
    assert body == SIMPLE
    assert spec.schema_version == "2.2"
    assert spec.description == "Say hello."
    assert [s.name for s in spec.steps] == ["greet"]
    assert spec.parameters["greeting"].default == "hello"
    assert spec.parameters["names"].required and not spec.parameters["greeting"].required
    assert spec.platform_types == ["Linux", "MacOS"]


def test_the_same_document_in_yaml_parses_to_the_same_body():
    body, _ = document_parse(SIMPLE_YAML, "YAML")
    assert body == SIMPLE


def test_a_json_syntax_error_names_its_line_and_column():
    content = '{\n  "schemaVersion": "2.2",\n  "mainSteps": [,]\n}\n'
    error = refusal(content)
    assert error.line == 3
    assert "line 3, column" in error.message
    assert error.field == "content"


def test_a_yaml_syntax_error_names_its_line_and_column():
    content = "schemaVersion: '2.2'\nmainSteps:\n  - name: a\n    action: [unclosed\n"
    error = refusal(content, "YAML")
    assert error.line is not None and error.line >= 4
    assert f"line {error.line}, column" in error.message


def test_a_yaml_tab_indent_error_names_its_line():
    error = refusal("schemaVersion: '2.2'\nmainSteps:\n\t- name: a\n", "YAML")
    assert error.line == 3
    assert "line 3" in error.message


@pytest.mark.parametrize("content", ["", "   \n", "[1, 2]", '"text"'])
def test_empty_content_or_a_document_that_is_not_a_mapping_is_refused(content):
    refusal(content)


def test_an_unknown_document_format_is_refused():
    error = refusal(as_json(SIMPLE), "XML")
    assert error.field == "content_format"


def test_a_document_over_64_kib_is_refused_as_too_large():
    body = with_inputs(runCommand=["echo x" * 2000] * 6)
    content = as_json(body)
    assert len(content.encode()) > MAX_CONTENT_BYTES
    error = refusal(content, error=MaxDocumentSizeExceeded)
    assert str(MAX_CONTENT_BYTES) in error.message


def test_a_document_just_under_the_size_limit_is_accepted():
    content = as_json(with_inputs(runCommand=["#" + "x" * 60000]))
    assert len(content.encode()) <= MAX_CONTENT_BYTES
    document_parse(content, "JSON")


def test_the_size_limit_counts_bytes_not_characters():
    # 22,000 three-byte characters are 66,000 bytes.
    content = json.dumps(with_inputs(runCommand=["echo " + "€" * 22000]), ensure_ascii=False)
    assert len(content) < MAX_CONTENT_BYTES < len(content.encode())
    refusal(content, error=MaxDocumentSizeExceeded)


def test_the_content_hash_is_the_sha256_of_the_text_as_written():
    content = as_json(SIMPLE)
    assert content_hash(content) == hashlib.sha256(content.encode("utf-8")).hexdigest()
    assert content_hash(content + " ") != content_hash(content)


@pytest.mark.parametrize(("source", "target"), [("JSON", "YAML"), ("YAML", "JSON")])
def test_rendering_in_the_other_format_round_trips_to_the_same_body(source, target):
    content = as_json(SIMPLE) if source == "JSON" else SIMPLE_YAML
    body, _ = document_parse(content, source)
    rendered = content_render(body, target)
    again, _ = document_parse(rendered, target)
    assert again == body
    # Keys keep the document's order, so the rendered text reads as the author wrote it.
    assert list(again) == ["schemaVersion", "description", "parameters", "mainSteps"]


def test_rendering_keeps_non_ascii_text_readable():
    body = with_inputs(runCommand=["echo grüße"])
    assert "grüße" in content_render(body, "YAML")
    assert "grüße" in content_render(body, "JSON")


# --- Where a field error is -----------------------------------------------------------------


def test_a_missing_run_command_names_its_path_and_line_in_json():
    body = with_inputs()
    del body["mainSteps"][0]["inputs"]["runCommand"]
    content = as_json(body)
    error = refusal(content)
    # The field is the missing one; the line is where its mapping is written.
    assert error.field == "mainSteps[0].inputs.runCommand"
    assert error.message.startswith(f"mainSteps[0].inputs.runCommand (line {error.line}): ")
    assert error.line == content.splitlines().index('      "inputs": {') + 1


def test_a_bad_run_command_names_its_path_and_line_in_yaml():
    content = SIMPLE_YAML.replace(
        "runCommand:\n        - echo {{ greeting }} {{ names }}", "runCommand: 42"
    )
    error = refusal(content, "YAML")
    assert error.field == "mainSteps[0].inputs.runCommand"
    assert error.line == content.splitlines().index("      runCommand: 42") + 1
    assert error.message.startswith(f"mainSteps[0].inputs.runCommand (line {error.line}): ")


def test_an_error_in_the_second_step_names_that_step():
    body = copy.deepcopy(SIMPLE)
    body["mainSteps"].append({"action": "aws:runShellScript", "name": "two", "inputs": {}})
    content = as_json(body)
    error = refusal(content)
    assert error.field == "mainSteps[1].inputs.runCommand"
    assert error.line == content.splitlines().index('      "inputs": {}') + 1


def test_a_parameter_error_names_the_parameter_and_its_line():
    content = SIMPLE_YAML.replace("type: StringList", "type: Text")
    error = refusal(content, "YAML")
    assert error.field == "parameters.names.type"
    assert error.line == content.splitlines().index("    type: Text") + 1
    assert "String, StringList, Integer, Boolean, StringMap, MapList" in error.message


# --- Schema rules ---------------------------------------------------------------------------


def test_an_unknown_top_level_key_is_refused():
    error = refusal(as_json({**SIMPLE, "runtimeConfig": {}}))
    assert error.field == "runtimeConfig"


@pytest.mark.parametrize("version", [None, "1.2", "2.0", "0.3"])
def test_only_schema_version_2_2_is_accepted(version):
    body = {k: v for k, v in SIMPLE.items() if k != "schemaVersion"}
    if version is not None:
        body["schemaVersion"] = version
    error = refusal(as_json(body), error=InvalidDocumentSchemaVersion)
    assert error.field == "schemaVersion"


def test_an_unknown_action_is_refused_naming_the_step():
    error = refusal(as_json(with_step(action="aws:runDocument")))
    assert error.field == "mainSteps[0].action"
    assert "aws:runShellScript" in error.message


def test_duplicate_step_names_are_refused_at_the_second():
    body = copy.deepcopy(SIMPLE)
    body["mainSteps"].append(copy.deepcopy(body["mainSteps"][0]))
    error = refusal(as_json(body))
    assert error.field == "mainSteps[1].name"
    assert "'greet' is the name of an earlier step" in error.message


@pytest.mark.parametrize("name", [None, "", "has space", "x" * 101, 7])
def test_a_step_needs_a_valid_name(name):
    error = refusal(as_json(with_step(name=name)))
    assert error.field == "mainSteps[0].name"


def test_main_steps_are_required_and_bounded():
    refusal(as_json({"schemaVersion": "2.2"}))
    refusal(as_json({**SIMPLE, "mainSteps": []}))
    many = copy.deepcopy(SIMPLE)
    many["mainSteps"] = [
        {**copy.deepcopy(SIMPLE["mainSteps"][0]), "name": f"s{i}"} for i in range(101)
    ]
    assert "at most 100" in refusal(as_json(many)).message


def test_an_unknown_step_key_or_input_is_refused():
    assert refusal(as_json(with_step(onFailure="exit"))).field == "mainSteps[0].onFailure"
    assert refusal(as_json(with_inputs(env={"A": "1"}))).field == "mainSteps[0].inputs.env"


@pytest.mark.parametrize("commands", ["", "   ", [], [1, 2], None, {"a": "b"}])
def test_run_command_must_be_text_or_a_list_of_text(commands):
    error = refusal(as_json(with_inputs(runCommand=commands)))
    assert error.field == "mainSteps[0].inputs.runCommand"


def test_run_command_may_be_one_text():
    _, spec = document_parse(as_json(with_inputs(runCommand="echo {{ greeting }}")), "JSON")
    assert spec.steps[0].inputs["runCommand"] == "echo {{ greeting }}"


def test_the_working_directory_must_be_text():
    error = refusal(as_json(with_inputs(workingDirectory=["/srv"])))
    assert error.field == "mainSteps[0].inputs.workingDirectory"


def test_refresh_host_facts_takes_no_inputs():
    body = {
        "schemaVersion": "2.2",
        "mainSteps": [{"action": "bosun:refreshHostFacts", "name": "facts", "inputs": {"x": 1}}],
    }
    assert refusal(as_json(body)).field == "mainSteps[0].inputs"
    del body["mainSteps"][0]["inputs"]
    _, spec = document_parse(as_json(body), "JSON")
    assert spec.platform_types == ["Linux", "Windows", "MacOS"]


@pytest.mark.parametrize("seconds", [1, 172800, "60", "{{ timeout }}"])
def test_timeout_seconds_within_1_to_172800_or_a_parameter_is_accepted(seconds):
    body = with_inputs(timeoutSeconds=seconds)
    body["parameters"]["timeout"] = {"type": "String", "default": "60"}
    document_parse(as_json(body), "JSON")


@pytest.mark.parametrize("seconds", [0, -5, 172801, "abc", "1.5", True, 2.5, [60]])
def test_timeout_seconds_out_of_range_or_not_a_number_is_refused(seconds):
    error = refusal(as_json(with_inputs(timeoutSeconds=seconds)))
    assert error.field == "mainSteps[0].inputs.timeoutSeconds"


def test_an_undeclared_placeholder_is_refused_naming_it():
    error = refusal(as_json(with_inputs(runCommand=["echo {{ greeting }}", "echo {{ missing }}"])))
    assert error.field == "mainSteps[0].inputs.runCommand[1]"
    assert "{{ missing }}" in error.message and "not a declared parameter" in error.message


def test_an_undeclared_placeholder_in_the_working_directory_is_refused():
    error = refusal(as_json(with_inputs(workingDirectory="/srv/{{ app }}")))
    assert error.field == "mainSteps[0].inputs.workingDirectory"


def test_parameter_store_references_are_not_placeholders():
    body = with_inputs(runCommand=["echo {{ssm:/app/name}} {{ ssm-secure:/db/pw }}"])
    document_parse(as_json(body), "JSON")


@pytest.mark.parametrize("platform", ["Linux", "Windows", "MacOS"])
def test_a_precondition_names_a_platform_type_and_narrows_the_platforms(platform):
    body = with_step(
        action="aws:runPowerShellScript", precondition={"StringEquals": ["platformType", platform]}
    )
    _, spec = document_parse(as_json(body), "JSON")
    assert spec.platform_types == [platform]
    assert spec.steps[0].precondition == {"StringEquals": ["platformType", platform]}


@pytest.mark.parametrize(
    "precondition",
    [
        {"StringEquals": ["platformType", "Solaris"]},
        {"StringEquals": ["platformType"]},
        {"StringEquals": ["platformType", "Linux", "Windows"]},
        {"StringEquals": ["osType", "Linux"]},
        {"StringLike": ["platformType", "Linux"]},
        {"StringEquals": "platformType=Linux"},
        ["platformType", "Linux"],
        {},
    ],
)
def test_a_malformed_precondition_is_refused(precondition):
    error = refusal(as_json(with_step(precondition=precondition)))
    assert error.field == "mainSteps[0].precondition"


def test_platform_types_are_the_union_of_the_steps():
    body = copy.deepcopy(SIMPLE)
    body["mainSteps"].append(
        {
            "action": "aws:runPowerShellScript",
            "name": "windows",
            "precondition": {"StringEquals": ["platformType", "Windows"]},
            "inputs": {"runCommand": ["Write-Output hi"]},
        }
    )
    _, spec = document_parse(as_json(body), "JSON")
    assert spec.platform_types == ["Linux", "Windows", "MacOS"]


# --- Parameter definitions ------------------------------------------------------------------


def with_parameter(name: str = "p", **definition: Any) -> dict[str, Any]:
    body = copy.deepcopy(SIMPLE)
    body["parameters"][name] = definition
    return body


@pytest.mark.parametrize(
    "kind", ["String", "StringList", "Integer", "Boolean", "StringMap", "MapList"]
)
def test_every_parameter_type_is_accepted(kind):
    _, spec = document_parse(as_json(with_parameter(type=kind)), "JSON")
    assert spec.parameters["p"].type == kind


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"type": "Text"}, "parameters.p.type"),
        ({}, "parameters.p.type"),
        ({"type": "String", "secret": True}, "parameters.p.secret"),
        ({"type": "String", "allowedPattern": "[unclosed"}, "parameters.p.allowedPattern"),
        ({"type": "String", "allowedPattern": 5}, "parameters.p.allowedPattern"),
        ({"type": "String", "allowedValues": "a,b"}, "parameters.p.allowedValues"),
        ({"type": "String", "allowedValues": [{"a": 1}]}, "parameters.p.allowedValues"),
        ({"type": "StringList", "minItems": -1}, "parameters.p.minItems"),
        ({"type": "StringList", "maxItems": "3"}, "parameters.p.maxItems"),
        ({"type": "String", "minChars": True}, "parameters.p.minChars"),
        ({"type": "String", "maxChars": 2.5}, "parameters.p.maxChars"),
        ({"type": "String", "description": ["x"]}, "parameters.p.description"),
        ({"type": "String", "displayType": 1}, "parameters.p.displayType"),
    ],
)
def test_a_malformed_parameter_definition_names_the_key(definition, field):
    assert refusal(as_json(with_parameter(**definition))).field == field


def test_a_parameter_definition_must_be_a_mapping():
    body = copy.deepcopy(SIMPLE)
    body["parameters"]["p"] = "String"
    assert refusal(as_json(body)).field == "parameters.p"


@pytest.mark.parametrize("name", ["has-dash", "has space", "x" * 65])
def test_a_parameter_name_is_letters_digits_and_underscores(name):
    assert refusal(as_json(with_parameter(name, type="String"))).field == f"parameters.{name}"


def test_at_most_50_parameters():
    body = copy.deepcopy(SIMPLE)
    body["parameters"] = {f"p{i}": {"type": "String", "default": ""} for i in range(51)}
    body["mainSteps"][0]["inputs"]["runCommand"] = ["true"]
    assert refusal(as_json(body)).field == "parameters"


@pytest.mark.parametrize(
    "definition",
    [
        {"type": "String", "default": "c", "allowedValues": ["a", "b"]},
        {"type": "String", "default": "abc", "allowedPattern": "^[0-9]+$"},
        {"type": "String", "default": "ab", "minChars": 3},
        {"type": "String", "default": "abcd", "maxChars": 3},
        {"type": "StringList", "default": [], "minItems": 1},
        {"type": "StringList", "default": ["a", "b"], "maxItems": 1},
        {"type": "Integer", "default": "ten"},
        {"type": "Integer", "default": 5, "allowedValues": [1, 2]},
        {"type": "Boolean", "default": "yes"},
        {"type": "StringMap", "default": ["a"]},
        {"type": "MapList", "default": [{"a": 1}, {"b": 2}], "maxItems": 1},
        {"type": "MapList", "default": ["a"]},
    ],
)
def test_a_default_that_breaks_its_own_rules_is_refused(definition):
    assert refusal(as_json(with_parameter(**definition))).field == "parameters.p.default"


@pytest.mark.parametrize(
    "definition",
    [
        {"type": "String", "default": "b", "allowedValues": ["a", "b"]},
        {"type": "String", "default": "123", "allowedPattern": "^[0-9]+$"},
        {"type": "String", "default": "", "minChars": 0, "maxChars": 3},
        {"type": "StringList", "default": ["a"], "minItems": 1, "maxItems": 2},
        {"type": "Integer", "default": 2, "allowedValues": [1, 2]},
        {"type": "Integer", "default": "2"},
        {"type": "Boolean", "default": False},
        {"type": "Boolean", "default": "true"},
        {"type": "StringMap", "default": {"a": "b"}},
        {"type": "StringMap", "default": '{"a": "b"}'},
        {"type": "MapList", "default": [{"a": 1}], "minItems": 1, "maxItems": 1},
    ],
)
def test_a_default_that_keeps_its_rules_is_accepted(definition):
    _, spec = document_parse(as_json(with_parameter(**definition)), "JSON")
    assert spec.parameters["p"].has_default
