"""The documents Bosun ships: read-only, owned by Bosun, kept in step with this code.

`AWS-RunShellScript` and `AWS-RunPowerShellScript` are answered by their Bosun twins, so
scripts and tools written for AWS keep working unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction

from commands.documents.content import content_hash
from commands.documents.schema import document_parse
from commands.models import Document, DocumentFormat, DocumentVersion

RUN_SHELL_SCRIPT = "Bosun-RunShellScript"
RUN_POWERSHELL_SCRIPT = "Bosun-RunPowerShellScript"
REFRESH_HOST_FACTS = "Bosun-RefreshHostFacts"

# AWS's names for the same documents.
ALIASES = {
    "AWS-RunShellScript": RUN_SHELL_SCRIPT,
    "AWS-RunPowerShellScript": RUN_POWERSHELL_SCRIPT,
}
# The prefixes no user document may take: they name what Bosun and AWS ship.
RESERVED_PREFIXES = ("aws-", "amazon", "amzn", "bosun-")

_TIMEOUT_PATTERN = (
    "([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)"
)


def _script_document(action: str, step: str, what: str) -> dict[str, Any]:
    return {
        "schemaVersion": "2.2",
        "description": f"Run {what} on the targeted nodes.",
        "parameters": {
            "commands": {
                "type": "StringList",
                "description": f"(Required) The commands to run or the path to an existing "
                f"{what} on the node.",
                "minItems": 1,
                "displayType": "textarea",
            },
            "workingDirectory": {
                "type": "String",
                "default": "",
                "description": "(Optional) The path to the working directory on the node.",
                "maxChars": 4096,
            },
            "executionTimeout": {
                "type": "String",
                "default": "3600",
                "description": "(Optional) The time in seconds for a command to finish before "
                "it is considered to have failed. Default 3600 (1 hour), at most 172800 (48 "
                "hours).",
                "allowedPattern": _TIMEOUT_PATTERN,
            },
        },
        "mainSteps": [
            {
                "action": action,
                "name": step,
                "inputs": {
                    "timeoutSeconds": "{{ executionTimeout }}",
                    "runCommand": "{{ commands }}",
                    "workingDirectory": "{{ workingDirectory }}",
                },
            }
        ],
    }


BUILTIN_DOCUMENTS: dict[str, dict[str, Any]] = {
    RUN_SHELL_SCRIPT: _script_document("aws:runShellScript", "runShellScript", "a shell script"),
    RUN_POWERSHELL_SCRIPT: _script_document(
        "aws:runPowerShellScript", "runPowerShellScript", "a PowerShell script"
    ),
    REFRESH_HOST_FACTS: {
        "schemaVersion": "2.2",
        "description": "Collect the nodes' host facts now (hostname, platform, addresses, agent "
        "version) and update Fleet Manager with them.",
        "mainSteps": [{"action": "bosun:refreshHostFacts", "name": "refreshHostFacts"}],
    },
}


def builtin_content(name: str) -> str:
    return json.dumps(BUILTIN_DOCUMENTS[name], indent=2) + "\n"


def canonical_name(name: str) -> str:
    """The stored name a requested one stands for (AWS's names for Bosun's built-ins)."""
    return ALIASES.get(name, name)


def builtin_documents_sync(**kwargs: Any) -> None:
    """After migrate: each built-in exists, and a changed one gets a new default version."""
    for name in BUILTIN_DOCUMENTS:
        content = builtin_content(name)
        digest = content_hash(content)
        with transaction.atomic():
            document, _ = Document.objects.select_for_update().get_or_create(
                name=name, defaults={"is_builtin": True, "default_version": 1, "latest_version": 0}
            )
            current = document.versions.filter(version=document.default_version).first()
            if current is not None and current.content_hash == digest:
                continue
            body, spec = document_parse(content, DocumentFormat.JSON)
            version = document.latest_version + 1
            DocumentVersion.objects.create(
                document=document,
                version=version,
                content=content,
                content_format=DocumentFormat.JSON,
                content_hash=digest,
                body=body,
                description=spec.description,
                schema_version=spec.schema_version,
                platform_types=spec.platform_types,
            )
            Document.objects.filter(pk=document.pk).update(
                is_builtin=True, default_version=version, latest_version=version
            )
