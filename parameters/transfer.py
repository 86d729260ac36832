"""Bulk export and import of a path, as JSON or as a `.env` file.

Export reads through the same selectors as every face: SecureStrings are exported in
plaintext only when asked and authorized (each one is audited as a decryption); otherwise
they are left out and listed as skipped, never exported as ciphertext a reader might
mistake for the value. Import writes through `parameter_put`, one parameter at a time, and
reports each line's outcome: one bad line never stops or undoes the others.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from access.authorization import Principal
from bosun.lib.errors import AccessDenied, BosunError
from parameters import rules
from parameters.exceptions import ParameterValidationError
from parameters.models import ParameterType
from parameters.selectors import parameter_get, parameters_by_path
from parameters.services import UNSET, parameter_put

FORMATS = ("json", "env")
MAX_EXPORT = 10_000
MAX_IMPORT = 1_000
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPED = {"n": "\n", '"': '"', "\\": "\\"}


@dataclass
class Export:
    content: str
    exported: int
    skipped: list[str] = field(default_factory=list)  # SecureStrings left out, by name


def parameters_export(
    *, principal: Principal, path: str, fmt: str = "json", with_decryption: bool = False
) -> Export:
    """Every readable parameter below `path` (recursive), as {relative name: value}."""
    if fmt not in FORMATS:
        raise ParameterValidationError("Export as json or env.", field="format")
    base = rules.parse_path(path)
    values: dict[str, str] = {}
    skipped: list[str] = []
    token: str | None = None
    while True:
        page = parameters_by_path(
            principal=principal,
            path=base,
            recursive=True,
            with_decryption=False,
            next_token=token,
        )
        for item in page.items:
            key = _relative(item.name, base)
            if item.type == ParameterType.SECURE_STRING:
                if not with_decryption:
                    skipped.append(item.name)
                    continue
                try:
                    values[key] = _decrypted(principal, item.name)
                except AccessDenied:
                    skipped.append(item.name)
                continue
            values[key] = item.value
        if len(values) + len(skipped) > MAX_EXPORT:
            raise ParameterValidationError(
                f"More than {MAX_EXPORT} parameters below {base}: export a narrower path."
            )
        token = page.next_token
        if not token:
            break
    content = _as_env(values) if fmt == "env" else json.dumps(values, indent=2, sort_keys=True)
    return Export(content=content, exported=len(values), skipped=skipped)


def _decrypted(principal: Principal, name: str) -> str:
    # The selector authorizes ssm:GetParameter and kms:Decrypt, and audits the decryption.
    return parameter_get(principal=principal, name=name, with_decryption=True).value


def _relative(name: str, base: str) -> str:
    lookup = rules.lookup_of(name)
    prefix = "" if base == "/" else base
    relative = lookup[len(prefix) :].lstrip("/") if lookup.startswith(prefix) else lookup
    return relative or lookup


def env_key(relative: str) -> str:
    """`db/password` → `DB_PASSWORD`: how a name reads as an environment variable."""
    return re.sub(r"[^A-Za-z0-9_]", "_", relative).upper()


def _as_env(values: dict[str, str]) -> str:
    lines = []
    for relative, value in sorted(values.items()):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{env_key(relative)}="{escaped}"')
    return "\n".join(lines) + ("\n" if lines else "")


@dataclass
class ImportLine:
    name: str
    outcome: str  # "created", "updated", "failed"
    version: int | None = None
    error: str = ""


@dataclass
class ImportResult:
    lines: list[ImportLine] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for line in self.lines if line.outcome == "failed")


def parameters_import(
    *,
    principal: Principal,
    path: str,
    content: str,
    fmt: str = "json",
    parameter_type: str = ParameterType.STRING,
    overwrite: bool = False,
    key_id: str | None = None,
) -> ImportResult:
    """Write each entry of `content` as `<path>/<key>`; JSON keys may hold slashes."""
    if fmt not in FORMATS:
        raise ParameterValidationError("Import json or env.", field="format")
    rules.parse_type(parameter_type)
    base = rules.parse_path(path)
    entries = _parse_json(content) if fmt == "json" else _parse_env(content)
    if len(entries) > MAX_IMPORT:
        raise ParameterValidationError(f"Import at most {MAX_IMPORT} parameters at a time.")
    result = ImportResult()
    for key, value in entries.items():
        name = f"{'' if base == '/' else base}/{key.strip('/')}"
        try:
            put = parameter_put(
                principal=principal,
                name=name,
                value=value,
                parameter_type=parameter_type,
                overwrite=overwrite,
                key_id=key_id or UNSET,
            )
        except BosunError as error:
            result.lines.append(ImportLine(name=name, outcome="failed", error=error.message))
            continue
        outcome = "created" if put.created else "updated"
        result.lines.append(ImportLine(name=name, outcome=outcome, version=put.version))
    return result


def _parse_json(content: str) -> dict[str, str]:
    try:
        data: Any = json.loads(content)
    except ValueError as error:
        raise ParameterValidationError(
            f"The file is not valid JSON (line {getattr(error, 'lineno', '?')}): give an object "
            'such as {"db/url": "postgres://…"}.',
            field="content",
        ) from None
    if not isinstance(data, dict):
        raise ParameterValidationError(
            'Give a JSON object of names to values, such as {"db/url": "postgres://…"}.',
            field="content",
        )
    entries: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str | int | float | bool) or value == "":
            raise ParameterValidationError(
                f"The value of {key!r} must be a non-empty string or number.", field="content"
            )
        entries[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return entries


def _parse_env(content: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, raw in enumerate(content.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _ENV_NAME.fullmatch(key):
            raise ParameterValidationError(
                f"Line {number} is not KEY=value (KEY is letters, digits and _).", field="content"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                # One pass, so an escaped backslash before an n (C:\\new) stays a backslash.
                value = _ESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), value)
        entries[key] = value
    return entries
