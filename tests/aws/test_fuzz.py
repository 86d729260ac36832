"""Fuzzing the gateway: bodies drawn from the service model's input shapes (valid-ish, with
values at and past their constraints) and plain garbage, properly signed, for every operation
the registry serves and a few it does not. Whatever comes in, the answer is never a 500 and
always AWS's JSON: the output shape, or `{"__type", "message", "Message"}`."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bosun.lib.aws import model, registry
from tests.aws.signing import call

UNSERVED = ["CreateMaintenanceWindow", "DescribePatchBaselines", "GetInventory", "PutInventory"]
MAX_DEPTH = 6
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# NUL is refused before any operation (test_gateway covers it): leave it out to reach them.
CHARACTERS = st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00")
NAMES = st.sampled_from(["/app/db", "app", "/a/b/c", "aws-thing", "/x", "a" * 30, ""])
TEXT = st.text(CHARACTERS, max_size=24) | st.sampled_from(
    ["", " ", "*", "../..", "a:b", "$LATEST", "1", "-1", "null"]
)


def _text_for(shape: Any) -> st.SearchStrategy[str]:
    if shape.enum:
        return st.sampled_from(list(shape.enum)) | TEXT
    low = shape.metadata.get("min", 0)
    high = shape.metadata.get("max")
    bounded = st.text(
        CHARACTERS,
        min_size=min(low, 40),
        max_size=min(high if high is not None else 40, 40),
    )
    choices = [bounded, TEXT]
    if "name" in shape.name.lower() or "path" in shape.name.lower():
        choices.append(NAMES)
    if high is not None and high <= 5000:
        choices.append(st.just("x" * (high + 1)))  # one past the maximum
    return st.one_of(choices)


def _number_for(shape: Any, integral: bool) -> st.SearchStrategy[Any]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    edges = [value for value in (low, high) if value is not None]
    edges += [edge + step for edge in list(edges) for step in (-1, 1)]
    edges += [2**31, -(2**31) - 1, 2**63, 2**70] if integral else [1e308, -1e308]
    plain = st.integers(-(2**40), 2**40) if integral else st.floats(allow_nan=False)
    return st.sampled_from(edges) | plain


def for_shape(shape: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if depth > MAX_DEPTH:
        return st.none()
    if kind == "structure":
        members = shape.members
        required = set(shape.required_members)
        return st.fixed_dictionaries(
            {name: for_shape(members[name], depth + 1) for name in members if name in required},
            optional={
                name: for_shape(member, depth + 1)
                for name, member in members.items()
                if name not in required
            },
        )
    if kind == "list":
        high = shape.metadata.get("max")
        return st.lists(
            for_shape(shape.member, depth + 1), max_size=min(high + 1 if high else 4, 4)
        )
    if kind == "map":
        return st.dictionaries(_text_for(shape.key), for_shape(shape.value, depth + 1), max_size=3)
    if kind == "string":
        return _text_for(shape)
    if kind in ("integer", "long"):
        return _number_for(shape, integral=True)
    if kind in ("double", "float"):
        return _number_for(shape, integral=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.floats(0, 4e9) | st.sampled_from(["2026-01-01T00:00:00Z", "yesterday"])
    if kind == "blob":
        return st.binary(max_size=20).map(lambda data: base64.b64encode(data).decode())
    return st.none()


def body_for(operation: str) -> st.SearchStrategy[dict[str, Any]]:
    shape = model.operation_model(operation).input_shape
    return for_shape(shape) if shape is not None else st.just({})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def signer(live_server, admin, keys_for):
    key_id, secret = keys_for(admin)
    url = live_server.url + "/"

    def send(operation: str, body: bytes) -> None:
        answer = call(url, body, key_id=key_id, secret=secret, target=f"AmazonSSM.{operation}")
        assert answer.status != 500, (operation, body[:500], answer.raw[:2000])
        assert answer.status in (200, 400), (answer.status, answer.raw[:500])
        assert answer.headers["content-type"] == "application/x-amz-json-1.1"
        assert answer.headers.get("x-amzn-requestid")
        parsed = json.loads(answer.raw)
        assert isinstance(parsed, dict)
        if answer.status == 400:
            assert isinstance(parsed["__type"], str) and parsed["__type"]
            assert parsed["message"] == parsed["Message"]
            assert isinstance(parsed["message"], str)
        else:
            assert "__type" not in parsed

    return send


def operations() -> list[str]:
    return registry.served() + UNSERVED


def test_every_served_operation_has_a_model():
    assert all(model.operation_model(name) is not None for name in registry.served())


@FUZZ
@given(data=st.data())
def test_bodies_shaped_like_the_model_never_get_a_500(signer, data):
    operation = data.draw(st.sampled_from(operations()), label="operation")
    body = data.draw(body_for(operation), label="body")
    signer(operation, json.dumps(body).encode())


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_garbage_json_never_gets_a_500(signer, data):
    operation = data.draw(st.sampled_from(operations()), label="operation")
    body = data.draw(JSON | st.dictionaries(TEXT, JSON, max_size=5), label="body")
    signer(operation, json.dumps(body).encode())


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_garbage_bytes_never_get_a_500(signer, data):
    operation = data.draw(st.sampled_from(operations()), label="operation")
    signer(operation, data.draw(st.binary(max_size=200), label="body"))
