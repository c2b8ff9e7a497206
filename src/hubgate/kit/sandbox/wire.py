"""How a job and its outcomes cross between Hubgate and a sandbox worker process (D390, D442).

A frame is two parts, each a 4-byte big-endian length and that many bytes of UTF-8 JSON: a
small head and the bulk, which the side that reads it passes on without parsing it. A job's
head is ``{"body", "params", "seconds", "memoryBytes", "fenceSeconds", "fenceBytes"}`` and
its bulk the calls' arguments (``sandbox.rows_json``), handed to the script's context as they
came. An answer's head is ``{"stopped"}``, the failure that stopped the batch (or null), and
its bulk the prelude's outcomes text (``outcomes.batch_outcomes``), or ``null`` when it could
not be read; only Hubgate parses it, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from hubgate.kit.sandbox.outcomes import FailureKind, ScriptFailure

HEADER: Final = 4
# A worker's exit status when Python itself could not allocate under the fence.
OUT_OF_MEMORY_EXIT: Final = 3


def rows_json(params: Sequence[str], calls: Sequence[Mapping[str, Any]]) -> bytes:
    """The calls as the prelude's ``callAll`` takes them: each the list of its arguments in
    parameter order, a missing one null."""
    return orjson.dumps([[inputs.get(name) for name in params] for inputs in calls])


def frame(head: Any, bulk: bytes) -> bytes:
    text = orjson.dumps(head)
    return b"".join(
        (len(text).to_bytes(HEADER, "big"), text, len(bulk).to_bytes(HEADER, "big"), bulk)
    )


def unframe(buffer: bytes | bytearray) -> tuple[bytes, bytes] | None:
    """The head and bulk of the frame at the start of ``buffer``, or None while incomplete."""
    if len(buffer) < HEADER:
        return None
    head_end = HEADER + int.from_bytes(buffer[:HEADER], "big")
    if len(buffer) < head_end + HEADER:
        return None
    bulk_end = head_end + HEADER + int.from_bytes(buffer[head_end : head_end + HEADER], "big")
    if len(buffer) < bulk_end:
        return None
    return bytes(buffer[HEADER:head_end]), bytes(buffer[head_end + HEADER : bulk_end])


def encode(failure: ScriptFailure | None) -> dict[str, Any] | None:
    if failure is None:
        return None
    return {
        "kind": failure.kind.value,
        "message": failure.message,
        "console": list(failure.console),
        "notes": list(failure.notifications),
    }


def decode(found: Mapping[str, Any] | None) -> ScriptFailure | None:
    if found is None:
        return None
    lines, notes = tuple(found["console"]), tuple(found["notes"])
    return ScriptFailure(FailureKind(found["kind"]), found["message"], lines, notes)
