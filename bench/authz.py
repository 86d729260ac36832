"""One authorization decision against 50 attached policies, as every request makes one.

The 50 policies are what a busy install attaches to one user through their groups: team
policies allowing parameter paths with wildcards (some behind source-address or MFA
conditions, some scoped by policy variables), session policies with tag conditions, a handful
of denies (production fences, an MFA guard, a NotAction lock) and the built-ins. Each
scenario is timed call by call (`perf_counter_ns` around each decision, timer overhead
included) over ROUNDS calls, REPEATS times; figures are the median and p99 across all calls.
Target: median ≤ 50 µs in every scenario. Compiling the 50 documents is timed too (a cold
cache costs that), and parsing them again once compiled.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from access.policy import Decision, Policy, evaluate, parse_policy
from access.policy.builtin import BUILTIN_POLICIES

ROUNDS = 20_000
REPEATS = 5
TARGET_MEDIAN_US = 50.0
ARN = "arn:aws:ssm:eu-west-1:123456789012"
CONTEXT: dict[str, Any] = {
    "aws:username": "alice",
    "aws:SourceIp": "10.20.30.40",
    "aws:MultiFactorAuthPresent": True,
    "ssm:resourceTag/Team": "team7",
    "ssm:resourceTag/Env": "dev",
}

SCENARIOS = {
    # Allowed only by one of the last team policies: every statement before it is checked.
    "allowed_late": ("ssm:PutParameter", f"{ARN}:parameter/team29/dev/db/password"),
    "allowed_early": ("ssm:GetParameter", f"{ARN}:parameter/team29/dev/db/password"),
    "explicit_deny": ("ssm:DeleteParameter", f"{ARN}:parameter/team3/prod/api-key"),
    "implicit_deny": ("ssm:PutParameter", f"{ARN}:parameter/elsewhere/config"),
    "session_with_tag_conditions": ("ssm:StartSession", f"{ARN}:managed-instance/mi-0abc1234"),
    "own_home_via_variable": ("ssm:PutParameter", f"{ARN}:parameter/home/alice/token"),
}


def _team(index: int) -> dict[str, Any]:
    path = f"arn:aws:ssm:*:*:parameter/team{index}"
    read: dict[str, Any] = {
        "Sid": "Read",
        "Effect": "Allow",
        "Action": ["ssm:GetParameter*", "ssm:DescribeParameters", "ssm:ListTagsForResource"],
        "Resource": [f"{path}/dev/*", f"{path}/staging/*", f"{path}/shared/app-?/*"],
    }
    if index % 5 == 0:
        read["Condition"] = {"IpAddress": {"aws:SourceIp": [f"10.{index}.0.0/16", "10.20.0.0/16"]}}
    if index % 7 == 0:
        read["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    write = {
        "Sid": "WriteDev",
        "Effect": "Allow",
        "Action": ["ssm:PutParameter", "ssm:LabelParameterVersion", "ssm:AddTagsToResource"],
        "Resource": f"{path}/dev/*",
    }
    decrypt = {
        "Sid": "Decrypt",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": f"arn:aws:kms:*:*:key/team{index}-*",
    }
    return {"Version": "2012-10-17", "Statement": [read, write, decrypt]}


def _sessions(team: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ssm:StartSession",
                "Resource": "arn:aws:ssm:*:*:managed-instance/*",
                "Condition": {
                    "StringEquals": {"ssm:resourceTag/Team": team},
                    "StringLike": {"ssm:resourceTag/Env": ["dev*", "staging"]},
                },
            },
            {
                "Effect": "Allow",
                "Action": ["ssm:TerminateSession", "ssm:ResumeSession"],
                "Resource": "arn:aws:ssm:*:*:session/${aws:username}-*",
            },
        ],
    }


DENIES: list[dict[str, Any]] = [
    {
        "Sid": "NoProdDeletes",
        "Effect": "Deny",
        "Action": ["ssm:DeleteParameter*", "ssm:UnlabelParameterVersion"],
        "Resource": "arn:aws:ssm:*:*:parameter/*/prod/*",
    },
    {
        "Sid": "OfficeOnlyForProd",
        "Effect": "Deny",
        "Action": "ssm:*",
        "Resource": "arn:aws:ssm:*:*:parameter/*/prod/*",
        "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}},
    },
    {
        "Sid": "ShellsNeedMfa",
        "Effect": "Deny",
        "Action": ["ssm:StartSession", "ssm:SendCommand"],
        "Resource": "*",
        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
    },
    {
        "Sid": "NoKeyAdmin",
        "Effect": "Deny",
        "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:Create*"],
        "Resource": "*",
    },
    {
        "Sid": "LockedOutside",
        "Effect": "Deny",
        "NotAction": ["ssm:*", "kms:*", "bosun:ViewDashboard", "bosun:ManageOwn*"],
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:username": ["alice", "bob", "carol"]}},
    },
]

HOME = {
    "Version": "2012-10-17",
    "Statement": {
        "Effect": "Allow",
        "Action": ["ssm:GetParameter*", "ssm:PutParameter", "ssm:DeleteParameter"],
        "Resource": "arn:aws:ssm:*:*:parameter/home/${aws:username}/*",
    },
}


def documents() -> list[tuple[str, dict[str, Any]]]:
    """The 50 documents, in the order a user's attachments would list them."""
    named: list[tuple[str, dict[str, Any]]] = [
        (f"deny-{index}", {"Version": "2012-10-17", "Statement": [deny]})
        for index, deny in enumerate(DENIES)
    ]
    named += [(name, builtin.document) for name, builtin in BUILTIN_POLICIES.items()]
    named.remove(("AdministratorAccess", BUILTIN_POLICIES["AdministratorAccess"].document))
    named += [(f"sessions-team{index}", _sessions(f"team{index}")) for index in range(6, 9)]
    named.append(("home", HOME))
    named += [(f"team{index}", _team(index)) for index in range(50 - len(named))]
    if len(named) != 50:
        raise RuntimeError(f"the benchmark needs 50 policies, built {len(named)}")
    return named


def run() -> dict:
    started = time.perf_counter_ns()
    policies: list[tuple[str, Policy]] = [(name, parse_policy(doc)) for name, doc in documents()]
    compile_ms = (time.perf_counter_ns() - started) / 1e6
    started = time.perf_counter_ns()
    for _, document in documents():
        parse_policy(document)  # the same documents again: validated, compilation reused
    reparse_ms = (time.perf_counter_ns() - started) / 1e6
    statements = sum(len(policy.statements) for _, policy in policies)
    scenarios = {}
    for name, (action, resource) in SCENARIOS.items():
        decision = evaluate(policies, action=action, resource=resource, context=CONTEXT)
        timings = _time(policies, action, resource)
        scenarios[name] = {
            "action": action,
            "resource": resource,
            "decision": _describe(decision),
            **_spread(timings),
        }
    worst = max(result["median_us"] for result in scenarios.values())
    return {
        "policies": len(policies),
        "statements": statements,
        "calls_per_scenario": ROUNDS * REPEATS,
        "compile_50_policies_ms": round(compile_ms, 2),
        "reparse_50_unchanged_policies_ms": round(reparse_ms, 2),
        "scenarios": scenarios,
        "worst_median_us": worst,
        "target": {"median_us_at_most": TARGET_MEDIAN_US},
        "target_met": worst <= TARGET_MEDIAN_US,
    }


def summary(result: dict) -> str:
    verdict = "met" if result["target_met"] else "NOT met"
    parts = ", ".join(
        f"{name} {figures['median_us']} µs (p99 {figures['p99_us']})"
        for name, figures in result["scenarios"].items()
    )
    return (
        f"{result['policies']} policies / {result['statements']} statements: {parts}; "
        f"worst median {result['worst_median_us']} µs, target ≤ {TARGET_MEDIAN_US:g} µs "
        f"{verdict}; compiling the 50 takes {result['compile_50_policies_ms']} ms "
        f"({result['reparse_50_unchanged_policies_ms']} ms once compiled)"
    )


def _time(policies: list[tuple[str, Policy]], action: str, resource: str) -> list[int]:
    clock = time.perf_counter_ns
    timings: list[int] = []
    for _ in range(REPEATS):
        for _ in range(ROUNDS):
            started = clock()
            evaluate(policies, action=action, resource=resource, context=CONTEXT)
            timings.append(clock() - started)
    return timings


def _spread(timings: list[int]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "median_us": round(statistics.median(ordered) / 1000, 2),
        "p90_us": round(ordered[int(len(ordered) * 0.90)] / 1000, 2),
        "p99_us": round(ordered[int(len(ordered) * 0.99)] / 1000, 2),
        "max_us": round(ordered[-1] / 1000, 2),
    }


def _describe(decision: Decision) -> str:
    where = f" by {decision.policy} statement {decision.statement_index}" if decision.policy else ""
    return f"{decision.reason}{where}"
