"""How a job and its outcomes cross between Hubgate and a sandbox worker process (D390).

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. A job is
``{"body", "params", "calls", "seconds", "memoryBytes", "fenceSeconds", "fenceBytes"}``; its
answer is the list of outcomes, one per call, each ``{"value", "console", "notes"}`` or
``{"kind", "message", "console", "notes"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from hubgate.kit.sandbox.outcomes import FailureKind, Outcome, ScriptFailure, ScriptResult

HEADER: Final = 4
# A worker's exit status when Python itself could not allocate under the fence.
OUT_OF_MEMORY_EXIT: Final = 3


def frame(document: Any) -> bytes:
    text = orjson.dumps(document)
    return len(text).to_bytes(HEADER, "big") + text


def encode(outcome: Outcome) -> dict[str, Any]:
    shared = {"console": list(outcome.console), "notes": list(outcome.notifications)}
    if isinstance(outcome, ScriptResult):
        return {"value": outcome.value, **shared}
    return {"kind": outcome.kind.value, "message": outcome.message, **shared}


def decode(found: Mapping[str, Any]) -> Outcome:
    lines, notes = tuple(found["console"]), tuple(found["notes"])
    if "kind" in found:
        return ScriptFailure(FailureKind(found["kind"]), found["message"], lines, notes)
    return ScriptResult(found["value"], lines, notes)
