"""ARNs of documents and commands, as AWS writes them, for policies and the audit trail."""

from __future__ import annotations

from bosun.lib.arn import arn


def document_arn(name: str) -> str:
    return arn("ssm", f"document/{name}")


def command_arn(command_id: str) -> str:
    return arn("ssm", f"command/{command_id}")
