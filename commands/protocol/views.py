"""The agent's Run Command endpoints (agent/PROTOCOL.md "Run Command"), signed as every
agent request: output uploads and the fetch of `{{ssm-secure:…}}` values at run time."""

from __future__ import annotations

from typing import Any

from bosun_agent import protocol

from commands.output import STREAMS
from commands.services.agent import invocation_output_add, secure_parameters_read
from fleet.protocol.errors import bad_request
from fleet.protocol.validation import text_field
from fleet.protocol.views import AgentCall, agent_view

MAX_STEPS = 100
MAX_NAMES = 50


@agent_view()
def output(call: AgentCall, message_id: str) -> dict[str, Any]:
    stored = invocation_output_add(
        node=call.node, message_id=message_id, chunks=_chunks(call.data.get("chunks"))
    )
    return {"stored": stored}


def _chunks(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > protocol.MAX_OUTPUT_CHUNKS:
        raise bad_request(f"chunks: a list of at most {protocol.MAX_OUTPUT_CHUNKS} output chunks")
    chunks = []
    for number, chunk in enumerate(value):
        where = f"chunks[{number}]"
        if not isinstance(chunk, dict):
            raise bad_request(f"{where}: an object with step, stream, offset and data")
        step, offset, data = chunk.get("step"), chunk.get("offset"), chunk.get("data")
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < MAX_STEPS:
            raise bad_request(f"{where}.step: the step's index, 0 to {MAX_STEPS - 1}")
        if chunk.get("stream") not in STREAMS:
            raise bad_request(f"{where}.stream: stdout or stderr")
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**31:
            raise bad_request(f"{where}.offset: a character offset, 0 or more")
        if not isinstance(data, str) or len(data) > protocol.MAX_OUTPUT_CHUNK_CHARS:
            raise bad_request(
                f"{where}.data: text of at most {protocol.MAX_OUTPUT_CHUNK_CHARS} characters"
            )
        chunks.append({"step": step, "stream": chunk["stream"], "offset": offset, "data": data})
    return chunks


@agent_view()
def secure_parameters(call: AgentCall) -> dict[str, Any]:
    message_id = text_field(call.data, "message_id", max_length=64)
    names = call.data.get("names")
    if not isinstance(names, list) or not names or len(names) > MAX_NAMES:
        raise bad_request(f"names: a list of 1 to {MAX_NAMES} parameter names")
    if not all(isinstance(name, str) and 0 < len(name) <= 2048 for name in names):
        raise bad_request("names: every name is text of at most 2048 characters")
    values = secure_parameters_read(
        node=call.node, message_id=message_id, names=names, source_ip=call.source_ip
    )
    return {"parameters": values}
