"""Small builders for policy documents, so each test shows only what it is about."""

from typing import Any

from access.policy import Decision, Policy, evaluate, parse_policy

PARAMETER = "arn:aws:ssm:eu-west-1:123456789012:parameter"
INSTANCE = "arn:aws:ssm:eu-west-1:123456789012:managed-instance"


def statement(effect: str = "Allow", action: Any = "*", resource: Any = "*", **more: Any):
    body: dict[str, Any] = {"Effect": effect}
    if "not_action" in more:
        body["NotAction"] = more.pop("not_action")
    else:
        body["Action"] = action
    if "not_resource" in more:
        body["NotResource"] = more.pop("not_resource")
    else:
        body["Resource"] = resource
    if "sid" in more:
        body = {"Sid": more.pop("sid"), **body}
    if "condition" in more:
        body["Condition"] = more.pop("condition")
    assert not more, more
    return body


def policy(*statements: dict[str, Any], version: str = "2012-10-17") -> Policy:
    return parse_policy({"Version": version, "Statement": list(statements)})


def decide(
    *policies: Policy | tuple[str, Policy],
    action: str = "ssm:GetParameter",
    resource: str = f"{PARAMETER}/app/prod/db",
    context: dict[str, Any] | None = None,
) -> Decision:
    named = [
        item if isinstance(item, tuple) else (f"policy{number}", item)
        for number, item in enumerate(policies)
    ]
    return evaluate(named, action=action, resource=resource, context=context or {})
