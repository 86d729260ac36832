"""Reading a document's text: JSON or YAML, its hash, and where a field sits in the text.

Errors point at what to fix: a syntax error names its line and column; a field error names
the field's path (`mainSteps[0].inputs.runCommand`) and, where the text can be mapped, its
line. JSON is (almost always) YAML too, so one YAML node tree locates fields in both.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from commands.exceptions import InvalidDocumentContent, MaxDocumentSizeExceeded
from commands.models import DocumentFormat

# AWS's limit for Command documents.
MAX_CONTENT_BYTES = 64 * 1024

Path = tuple[str | int, ...]


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def path_text(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def content_load(content: str, content_format: str) -> dict[str, Any]:
    """The document as data; InvalidDocumentContent (with the line) when it does not parse."""
    if not isinstance(content, str) or not content.strip():
        raise InvalidDocumentContent("The document content is empty.", field="content")
    if len(content.encode("utf-8")) > MAX_CONTENT_BYTES:
        raise MaxDocumentSizeExceeded(
            f"The document is {len(content.encode('utf-8'))} bytes; a Command document may "
            f"be at most {MAX_CONTENT_BYTES}.",
            field="content",
        )
    if content_format == DocumentFormat.JSON:
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise InvalidDocumentContent(
                f"The JSON does not parse: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                field="content",
                line=exc.lineno,
            ) from None
    elif content_format == DocumentFormat.YAML:
        try:
            data = yaml.safe_load(content)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            where = f" at line {line}, column {mark.column + 1}" if mark else ""
            raise InvalidDocumentContent(
                f"The YAML does not parse: {exc.problem or exc.context}{where}.",
                field="content",
                line=line,
            ) from None
        except yaml.YAMLError as exc:
            raise InvalidDocumentContent(
                f"The YAML does not parse: {exc}", field="content"
            ) from None
    else:
        raise InvalidDocumentContent(
            f"DocumentFormat {content_format!r} is not supported; use JSON or YAML.",
            field="content_format",
        )
    if not isinstance(data, dict):
        raise InvalidDocumentContent(
            "A document is an object (a mapping) at the top.", field="content"
        )
    return data


def content_render(body: dict[str, Any], content_format: str) -> str:
    """The document in the other format (JSON↔YAML round trip), keys in document order."""
    if content_format == DocumentFormat.JSON:
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)


def line_of(content: str, path: Path) -> int | None:
    """The 1-based line where the field at `path` is written, if the text can be mapped."""
    try:
        node = yaml.compose(content)
    except yaml.YAMLError:
        return None
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((pair for pair in node.value if pair[0].value == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
