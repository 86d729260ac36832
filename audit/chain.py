"""The hash chain's arithmetic: canonical serialization and event hashes. No Django here.

Each event's hash is SHA-256 over one canonical document (sorted-key, compact JSON) holding
every recorded field, its own sequence number and the previous event's hash, so editing,
deleting, inserting or reordering any event breaks the chain from that point on. An exported
event (JSON Lines) carries everything needed to recompute its hash with `exported_hash`.

Request parameters are hashed as their canonical JSON text, which is also what the database
stores: PostgreSQL's jsonb rewrites numbers (1e16 comes back as 10000000000000000), so a hash
over re-read jsonb could break without anyone touching the row.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# The document an event's hash covers, by the names an export uses.
HASHED_FIELDS = (
    "sequence",
    "time",
    "principal",
    "user_id",
    "source_ip",
    "user_agent",
    "action",
    "resources",
    "params",
    "outcome",
    "error_code",
    "request_id",
    "face",
    "prev_hash",
)


def format_time(moment: datetime) -> str:
    """UTC with microseconds, always the same width: the one spelling a hash ever sees."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data that survives a dump-and-load unchanged.

    Keys become strings, tuples and sets lists, non-finite floats and foreign objects their
    text; anything else would either fail to serialize or come back different.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(item) for item in items]
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical document; `time` formatted, `params` as canonical JSON text."""
    canonical = canonical_json({name: document[name] for name in HASHED_FIELDS})
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# The fields only known once the chain head is locked, in the order sorted keys put them.
LOCKED_FIELDS = ("prev_hash", "sequence", "time")


def canonical_template(document: Mapping[str, Any]) -> list[str]:
    """The canonical document split around LOCKED_FIELDS' values: four pieces of text.

    PostgreSQL appends in one server-side call (see audit.append) and fills in the previous
    hash, the sequence number and the time there; joining the pieces with those values (the
    hash and time quoted) gives exactly `canonical_json` of the complete document. The
    markers carry a random nonce, so no recorded value can imitate one.
    """
    nonce = secrets.token_hex(8)
    markers = {name: f"\x00{nonce}:{name}\x00" for name in LOCKED_FIELDS}
    text = canonical_json({**{name: document[name] for name in HASHED_FIELDS}, **markers})
    pieces = []
    for name in LOCKED_FIELDS:
        before, text = text.split(canonical_json(markers[name]))
        pieces.append(before)
    return [*pieces, text]


def row_hash(row: Sequence[Any]) -> str:
    """The hash of a database row holding HASHED_FIELDS in order, `time` still a datetime.

    The verifier's inner loop: no model instances, one dict, one dump, one digest.
    """
    document = dict(zip(HASHED_FIELDS, row, strict=True))
    document["time"] = format_time(document["time"])
    return event_hash(document)


def exported_hash(record: Mapping[str, Any]) -> str:
    """Recompute an exported event's hash from its JSON Lines record alone."""
    return event_hash({**record, "params": canonical_json(record["params"])})
