"""The operations the AWS endpoint serves: each app's `aws.py` registers its own.

An operation is a function of one `AwsCall`, returning the output shape as a dict (datetimes
are rendered as epoch numbers). It translates and calls the app's services and selectors,
which authorize and audit: no rules of its own (DESIGN.md "One service layer, many faces").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.utils.module_loading import autodiscover_modules


@dataclass(frozen=True)
class AwsCall:
    principal: Any  # access.authorization.Principal (bosun.lib knows no app)
    params: dict[str, Any]  # validated against the service model, null members dropped
    region: str  # from the request's SigV4 scope
    account_id: str
    request_id: str
    # Where the client reached Bosun, e.g. "https://bosun.example:8443": the scheme (behind a
    # proxy as the proxy says) and the Host the signature covers.
    origin: str = ""

    @property
    def partition(self) -> str:
        return "aws-cn" if self.region.startswith("cn-") else "aws"

    def arn(self, resource: str) -> str:
        """`arn:<partition>:ssm:<region>:<account>:<resource>` in the caller's region."""
        return f"arn:{self.partition}:ssm:{self.region}:{self.account_id}:{resource}"


Handler = Callable[[AwsCall], dict[str, Any]]


@dataclass(frozen=True)
class Tagging:
    """How one resource type is tagged: `add(call, resource_id, [{"Key", "Value"}, …])`,
    `tags(call, resource_id) -> {key: value}`, `remove(call, resource_id, [key, …])`."""

    add: Callable[[AwsCall, str, list[dict[str, str]]], None]
    tags: Callable[[AwsCall, str], dict[str, str]]
    remove: Callable[[AwsCall, str, list[str]], None]


_operations: dict[str, Handler] = {}
_tagging: dict[str, Tagging] = {}
_discovered = False
_lock = threading.Lock()


def operation(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the AWS operation `name` (e.g. "GetParameter")."""

    def register(handler: Handler) -> Handler:
        if name in _operations and _operations[name] is not handler:
            raise RuntimeError(f"the AWS operation {name} is registered twice")
        _operations[name] = handler
        return handler

    return register


def tagging(resource_type: str, handlers: Tagging) -> None:
    """Register how resources of `resource_type` (AWS's ResourceTypeForTagging) are tagged."""
    _tagging[resource_type] = handlers


def tagging_for(resource_type: str) -> Tagging | None:
    _discover()
    return _tagging.get(resource_type)


def handler_for(name: str) -> Handler | None:
    _discover()
    return _operations.get(name)


def served() -> list[str]:
    _discover()
    return sorted(_operations)


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    with _lock:
        if not _discovered:
            autodiscover_modules("aws")
            # The tagging operations dispatch to what the apps registered.
            import_module("bosun.lib.aws.tagging")
            _discovered = True
