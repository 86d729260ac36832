"""Export of a path as JSON or .env, and import of either, one parameter at a time."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from parameters import selectors, transfer
from parameters.models import Parameter
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(put):
    put("/app/url", "https://example.test")
    put("/app/db/host", "db.internal")
    put("/app/db/password", "hunter2", "SecureString")
    put("/app/feature.flag-x", "on")
    put("/application/other", "not below /app")


def export(principal, **kwargs) -> transfer.Export:
    return transfer.parameters_export(principal=principal, path="/app", **kwargs)


def value_of(admin, name: str) -> str:
    return selectors.parameter_get(principal=admin, name=name, with_decryption=True).value


# --- Export ---------------------------------------------------------------------------------


def test_json_export_keys_are_relative_to_the_path_and_secure_strings_are_skipped(app, admin):
    result = export(admin)
    assert json.loads(result.content) == {
        "db/host": "db.internal",
        "feature.flag-x": "on",
        "url": "https://example.test",
    }
    assert (result.exported, result.skipped) == (3, ["/app/db/password"])
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()


def test_a_secure_string_is_never_exported_as_its_ciphertext(app, admin):
    content = export(admin).content
    sealed = selectors.parameter_get(principal=admin, name="/app/db/password").value
    assert sealed not in content
    assert "password" not in content


def test_with_decryption_secure_strings_are_exported_and_each_decryption_is_audited(app, admin):
    result = export(admin, with_decryption=True)
    assert json.loads(result.content)["db/password"] == "hunter2"
    assert (result.exported, result.skipped) == (4, [])
    [event] = AuditEvent.objects.filter(action="kms:Decrypt")
    assert event.resources[-1].endswith(":parameter/app/db/password")


def test_a_secure_string_the_exporter_may_not_decrypt_is_skipped(app, read_only):
    result = export(read_only, with_decryption=True)
    assert result.skipped == ["/app/db/password"]
    assert "hunter2" not in result.content


def test_env_export_maps_names_to_environment_variables(app, admin):
    assert export(admin, fmt="env").content == (
        'DB_HOST="db.internal"\nFEATURE_FLAG_X="on"\nURL="https://example.test"\n'
    )


def test_env_keys_are_upper_case_with_underscores():
    assert transfer.env_key("db/password") == "DB_PASSWORD"
    assert transfer.env_key("feature.flag-x") == "FEATURE_FLAG_X"


def test_env_export_escapes_quotes_backslashes_and_newlines(put, admin):
    put("/esc/value", 'say "hi"\\now\nnext line')
    content = transfer.parameters_export(principal=admin, path="/esc", fmt="env").content
    assert content == 'VALUE="say \\"hi\\"\\\\now\\nnext line"\n'


def test_an_env_export_imports_back_to_the_same_values(put, admin):
    tricky = {
        "/esc/a": 'say "hi"',
        "/esc/b": "C:\\new\\table",
        "/esc/c": "two\nlines",
        "/esc/d": "\\",
    }
    for name, value in tricky.items():
        put(name, value)
    content = transfer.parameters_export(principal=admin, path="/esc", fmt="env").content
    result = transfer.parameters_import(principal=admin, path="/copy", content=content, fmt="env")
    assert result.failed == 0
    for name, value in tricky.items():
        key = name.rsplit("/", 1)[1].upper()
        assert value_of(admin, f"/copy/{key}") == value


def test_the_root_path_exports_every_parameter_by_its_full_name(put, admin):
    put("top", "t")
    put("/a/b", "ab")
    content = transfer.parameters_export(principal=admin, path="/").content
    assert json.loads(content) == {"top": "t", "a/b": "ab"}


def test_export_includes_only_what_the_exporter_may_read(put, team_a_reader):
    put("/team/a/x", "ax")
    put("/team/b/y", "by")
    content = transfer.parameters_export(principal=team_a_reader, path="/team").content
    assert json.loads(content) == {"a/x": "ax"}


def test_an_unknown_format_is_refused(app, admin):
    assert refused("ValidationException", lambda: export(admin, fmt="yaml")) == (
        "Export as json or env."
    )


# --- Import ---------------------------------------------------------------------------------


def test_a_json_import_writes_each_key_below_the_path(admin):
    content = json.dumps({"db/url": "postgres://x", "port": 5432, "debug": True})
    result = transfer.parameters_import(principal=admin, path="/imp", content=content)
    assert [(line.name, line.outcome, line.version) for line in result.lines] == [
        ("/imp/db/url", "created", 1),
        ("/imp/port", "created", 1),
        ("/imp/debug", "created", 1),
    ]
    assert value_of(admin, "/imp/port") == "5432"
    assert value_of(admin, "/imp/debug") == "true"


def test_an_env_import_reads_quotes_export_prefixes_and_comments(admin):
    content = "\n".join(
        [
            "# a comment",
            "",
            "PLAIN=value",
            'DOUBLE="with spaces and \\"quotes\\""',
            "SINGLE='kept \\n literally'",
            "export EXPORTED=yes",
            "  SPACED = around  ",
            "EQUALS=a=b=c",
        ]
    )
    result = transfer.parameters_import(principal=admin, path="/env", content=content, fmt="env")
    assert result.failed == 0
    assert value_of(admin, "/env/PLAIN") == "value"
    assert value_of(admin, "/env/DOUBLE") == 'with spaces and "quotes"'
    assert value_of(admin, "/env/SINGLE") == "kept \\n literally"
    assert value_of(admin, "/env/EXPORTED") == "yes"
    assert value_of(admin, "/env/SPACED") == "around"
    assert value_of(admin, "/env/EQUALS") == "a=b=c"


@pytest.mark.parametrize("line", ["NOEQUALS", "1BAD=x", "BAD KEY=x", "=value"])
def test_a_line_that_is_not_key_equals_value_is_a_clear_error_naming_it(admin, line):
    content = f"GOOD=1\n{line}\n"
    message = refused(
        "ValidationException",
        lambda: transfer.parameters_import(
            principal=admin, path="/env", content=content, fmt="env"
        ),
    )
    assert message == "Line 2 is not KEY=value (KEY is letters, digits and _)."
    assert not Parameter.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "{not json",
            'The file is not valid JSON (line 1): give an object such as {"db/url": '
            '"postgres://…"}.',
        ),
        (
            '["a", "b"]',
            'Give a JSON object of names to values, such as {"db/url": "postgres://…"}.',
        ),
        ('{"a": {"nested": 1}}', "The value of 'a' must be a non-empty string or number."),
    ],
)
def test_a_json_file_of_the_wrong_shape_is_a_clear_error(admin, content, message):
    refusal = refused(
        "ValidationException",
        lambda: transfer.parameters_import(principal=admin, path="/imp", content=content),
    )
    assert refusal == message


def test_a_failing_entry_does_not_stop_the_others(put, admin):
    put("/imp/exists", "old")
    content = json.dumps({"first": "1", "exists": "new", "bad name": "x", "last": "2"})
    result = transfer.parameters_import(principal=admin, path="/imp", content=content)
    outcomes = {line.name: (line.outcome, line.error) for line in result.lines}
    assert outcomes["/imp/first"] == ("created", "")
    assert outcomes["/imp/last"] == ("created", "")
    assert outcomes["/imp/exists"][0] == "failed"
    assert outcomes["/imp/exists"][1].startswith("The parameter already exists.")
    assert outcomes["/imp/bad name"][0] == "failed"
    assert result.failed == 2
    assert value_of(admin, "/imp/exists") == "old"


def test_an_env_entry_without_a_value_fails_alone(admin):
    result = transfer.parameters_import(
        principal=admin, path="/env", content="EMPTY=\nFULL=x\n", fmt="env"
    )
    assert [(line.name, line.outcome) for line in result.lines] == [
        ("/env/EMPTY", "failed"),
        ("/env/FULL", "created"),
    ]
    assert result.lines[0].error == "The parameter value must not be empty."


def test_an_import_with_overwrite_updates_existing_parameters(put, admin):
    put("/imp/a", "old")
    result = transfer.parameters_import(
        principal=admin, path="/imp", content='{"a": "new", "b": "fresh"}', overwrite=True
    )
    assert [(line.outcome, line.version) for line in result.lines] == [
        ("updated", 2),
        ("created", 1),
    ]


def test_an_import_as_secure_strings_seals_every_value(admin):
    transfer.parameters_import(
        principal=admin,
        path="/sec",
        content='{"token": "t0k3n"}',
        parameter_type="SecureString",
        key_id="alias/aws/ssm",
    )
    parameter = Parameter.objects.get()
    assert (parameter.type, parameter.key_id) == ("SecureString", "alias/aws/ssm")
    assert parameter.versions.get().value == ""
    assert value_of(admin, "/sec/token") == "t0k3n"


def test_an_import_line_the_importer_may_not_write_fails_alone(team_a_reader):
    result = transfer.parameters_import(principal=team_a_reader, path="/imp", content='{"a": "1"}')
    [line] = result.lines
    assert line.outcome == "failed"
    assert line.error.startswith("User tara is not authorized to perform ssm:PutParameter")
