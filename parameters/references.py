"""Parameter references in documents and commands: `{{ssm:/path}}` and `{{ssm-secure:/path}}`.

`{{ssm:name}}` (also `{{ssm:name:version}}` or `{{ssm:name:label}}`) is resolved on the
server when a command is sent: only String and StringList parameters, read as the sender
(so a sender can only embed what they may read). `{{ssm-secure:name}}` is never resolved on
the server: the text is left as it is, so it is never stored in plaintext, and the agent
fetches the value over its own authenticated channel when it runs the command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from access.authorization import Principal
from parameters.exceptions import ParameterNotFound, ParameterValidationError
from parameters.models import ParameterType
from parameters.selectors import parameter_get

# Whitespace inside the braces is allowed, as SSM documents write `{{ ssm:/a/b }}`.
REFERENCE = re.compile(r"\{\{\s*(ssm|ssm-secure):([^\s{}]+)\s*\}\}")


class InvalidParameterReference(ParameterValidationError):
    code = "invalid_parameter_reference"


@dataclass(frozen=True)
class Reference:
    kind: str  # "ssm" or "ssm-secure"
    name: str
    text: str


def references_in(text: str) -> list[Reference]:
    return [
        Reference(kind=match.group(1), name=match.group(2), text=match.group(0))
        for match in REFERENCE.finditer(text)
    ]


def secure_references(text: str) -> list[str]:
    """The names of the `{{ssm-secure:…}}` references the agent will have to fetch."""
    return [ref.name for ref in references_in(text) if ref.kind == "ssm-secure"]


def references_resolve(*, principal: Principal, text: str) -> str:
    """`text` with every `{{ssm:…}}` replaced by the parameter's value; `{{ssm-secure:…}}`
    left for the agent. A missing parameter, a SecureString behind `{{ssm:…}}` or a
    parameter the principal may not read raises (AccessDenied for the last)."""
    cache: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        if kind == "ssm-secure":
            return match.group(0)
        if name not in cache:
            try:
                found = parameter_get(principal=principal, name=name)
            except ParameterNotFound:
                raise InvalidParameterReference(
                    f"The document refers to {{{{ssm:{name}}}}}, but parameter {name} does "
                    "not exist."
                ) from None
            if found.type == ParameterType.SECURE_STRING:
                raise InvalidParameterReference(
                    f"{name} is a SecureString: refer to it as {{{{ssm-secure:{name}}}}} so "
                    "its value is fetched by the agent and never stored with the command."
                )
            cache[name] = found.value
        return cache[name]

    return REFERENCE.sub(replace, text)
