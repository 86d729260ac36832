"""Parsing a policy document into an immutable, compiled `Policy`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from access.policy.actions import KNOWN_ACTIONS_LOWER
from access.policy.errors import PolicyError, json_type, located
from access.policy.statement import Statement

VERSIONS = ("2012-10-17", "2008-10-17")
VARIABLES_VERSION = "2012-10-17"  # as IAM, policy variables exist only from this version on
MAX_CHARACTERS = 6_144  # IAM's managed-policy limit, whitespace not counted
MAX_STATEMENTS = 100
# Past this much raw text (whitespace included) a document is refused before it is parsed.
MAX_TEXT = 65_536
TOP_LEVEL = ("Version", "Id", "Statement")


class Policy:
    """A validated policy, compiled once; immutable, so one instance serves every request.

    `statements_for(action)` gives, in document order, the statements whose Action or
    NotAction takes in an action: for catalogued actions a lookup in an index built here.
    """

    __slots__ = ("by_action", "id", "source", "statements", "version")

    def __init__(self, document: Mapping[str, Any], source: str) -> None:
        version = document["Version"]
        self.version: str = version
        self.id: str | None = document.get("Id")
        self.source = source
        raw = document["Statement"]
        raw_statements = raw if isinstance(raw, list) else [raw]
        variables = version == VARIABLES_VERSION
        statements = tuple(
            Statement(item, index=index, variables=variables)
            for index, item in enumerate(raw_statements)
        )
        _check_unique_sids(statements)
        self.statements = statements
        by_action: dict[str, tuple[Statement, ...]] = {}
        for action in KNOWN_ACTIONS_LOWER:
            found = tuple(s for s in statements if (action in s.covered_actions) != s.not_action)
            if found:
                by_action[action] = found
        # Catalogued action (lower-case) → its statements; actions no statement takes are absent.
        self.by_action = MappingProxyType(by_action)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "by_action"):
            raise AttributeError("a Policy is immutable")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"<Policy {self.version} with {len(self.statements)} statement(s)>"

    @property
    def document(self) -> dict[str, Any]:
        """A fresh copy of the document as parsed."""
        parsed: dict[str, Any] = json.loads(self.source)
        return parsed

    def statements_for(self, action: str) -> tuple[Statement, ...]:
        """The statements taking in a lower-cased action name, in document order."""
        found = self.by_action.get(action)
        if found is not None:
            return found
        if action in KNOWN_ACTIONS_LOWER:
            return ()
        # Not catalogued (the simulator may ask): match the patterns themselves.
        return tuple(s for s in self.statements if s.covers_action(action))


def parse_policy(document: str | Mapping[str, Any]) -> Policy:
    """Validate a policy document (JSON text or a parsed mapping) and compile it.

    Raises PolicyError naming the statement and element at fault.
    """
    if isinstance(document, str):
        parsed = _load(document)
        counted = document
    elif isinstance(document, Mapping):
        try:
            counted = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise PolicyError(f"policy is not JSON data ({error})") from None
        parsed = json.loads(counted)  # checked as JSON sees it: tuples become lists, and so on
    else:
        raise PolicyError(f"a policy must be JSON text or an object, not {type(document)}")
    size = sum(1 for character in counted if not character.isspace())
    if size > MAX_CHARACTERS:
        raise PolicyError(
            f"policy is {size:,} characters long (whitespace not counted); "
            f"the limit is {MAX_CHARACTERS:,}",
            code="LimitExceeded",
        )
    _check_top_level(parsed)
    return _compiled(json.dumps(parsed, ensure_ascii=False, separators=(",", ":")))


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Policy:
    # Compiling costs about half a millisecond (mostly regexes); a Policy is immutable, so
    # one compiled instance can serve every later parse of the same document.
    return Policy(json.loads(source), source)


def _load(text: str) -> dict[str, Any]:
    if len(text) > MAX_TEXT:
        raise PolicyError(f"policy text is over {MAX_TEXT:,} characters", code="LimitExceeded")
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise PolicyError(
            f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise PolicyError("not valid JSON: nested too deeply") from None
    if not isinstance(parsed, dict):
        raise PolicyError(f"a policy must be a JSON object, not {json_type(parsed)}")
    return parsed


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON would quietly keep the last of two "Effect"s; a policy must say one thing.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise PolicyError(f'"{key}" appears twice in one object')
        out[key] = value
    return out


def _check_top_level(document: dict[str, Any]) -> None:
    for element in document:
        if element not in TOP_LEVEL:
            raise PolicyError(
                f"unknown element (expected {', '.join(TOP_LEVEL)})", field=str(element)
            )
    version = document.get("Version")
    if version not in VERSIONS:
        shown = "missing" if version is None else json.dumps(version)
        raise PolicyError(f'must be "2012-10-17" (or "2008-10-17"), not {shown}', field="Version")
    if "Id" in document and not isinstance(document["Id"], str):
        raise PolicyError(f"must be a string, not {json_type(document['Id'])}", field="Id")
    statements = document.get("Statement")
    if statements is None:
        raise PolicyError("missing", field="Statement")
    if isinstance(statements, list):
        if not statements:
            raise PolicyError("must hold at least one statement", field="Statement")
        if len(statements) > MAX_STATEMENTS:
            raise PolicyError(
                f"{len(statements)} statements; the limit is {MAX_STATEMENTS}",
                field="Statement",
                code="LimitExceeded",
            )
    elif not isinstance(statements, dict):
        raise PolicyError(
            f"must be an object or a list of objects, not {json_type(statements)}",
            field="Statement",
        )


def _check_unique_sids(statements: tuple[Statement, ...]) -> None:
    seen: dict[str, int] = {}
    for statement in statements:
        if statement.sid is None:
            continue
        if statement.sid in seen:
            with located(statement=statement.index, sid=statement.sid, field="Sid"):
                raise PolicyError(f"the same Sid as statement {seen[statement.sid]}")
        seen[statement.sid] = statement.index
