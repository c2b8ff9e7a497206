"""What a sandbox run answers, and the limits it runs under (D42)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

MIB: Final = 1024 * 1024
_LOST: Final = "the batch lost track of its records: the script changed a built-in the sandbox uses"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per run (or per session): seconds of script time and bytes of JavaScript heap."""

    seconds: float
    memory_bytes: int

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("a script time limit must be positive")
        # Below this the prelude itself does not fit.
        if self.memory_bytes < 2 * MIB:
            raise ValueError("a script memory limit must be at least 2 MiB")


# D41: a formula step's script gets 30 s and 64 MiB.
FORMULA_LIMITS: Final = Limits(seconds=30.0, memory_bytes=64 * MIB)


class FailureKind(StrEnum):
    SYNTAX = "syntax error"
    ERROR = "error"
    TIME_LIMIT = "time limit"
    MEMORY_LIMIT = "memory limit"
    NO_DONE = "done not called"
    BAD_RESULT = "result not JSON"
    # The worker process was stopped by an OS limit or died (D390, D42's second fence).
    PROCESS = "sandbox process"


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """A script that called ``done(value)``; ``value`` is plain JSON data."""

    value: Any
    console: tuple[str, ...] = ()
    notifications: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ScriptFailure:
    """Why a script gave no value. ``message`` is the engine's first line (``TypeError: x``)."""

    kind: FailureKind
    message: str
    console: tuple[str, ...] = ()
    notifications: tuple[Mapping[str, str], ...] = field(default=())

    def reason(self) -> str:
        """One line for a person, e.g. for ``Elements-Error`` (D37)."""
        return f"{self.kind.value}: {self.message}"


Outcome = ScriptResult | ScriptFailure


def batch_outcomes(
    found: Mapping[str, Any] | None, stopped: ScriptFailure | None, count: int
) -> list[Outcome]:
    """The outcomes of ``count`` calls from what the prelude's ``results`` answered and the
    failure that stopped the batch, if any: that failure goes to the record it stopped and to
    every later one.

    ``found`` (None when it could not be read) is ``{"records", "lines", "notes"}``: one
    record per call begun, ``{"called", "error", "start", "noteStart"}`` with ``value`` (absent
    when the script gave ``undefined``, a function or a symbol: null) or ``bad`` (why the
    value is no JSON), and the batch's console lines and notes, each record's from its
    ``start``/``noteStart`` to the next record's.
    """
    if found is None:
        assert stopped is not None
        return [stopped] * count
    records, all_lines, all_notes = found["records"], found["lines"], found["notes"]
    outcomes: list[Outcome] = []
    for n, record in enumerate(records):
        following = records[n + 1] if n + 1 < len(records) else None
        lines = tuple(all_lines[record["start"] : following["start"] if following else None])
        notes = tuple(
            all_notes[record["noteStart"] : following["noteStart"] if following else None]
        )
        if record["error"] is not None:
            outcomes.append(ScriptFailure(FailureKind.ERROR, record["error"], lines, notes))
        elif "bad" in record:
            message = f"done() got a value JSON cannot hold ({record['bad']})"
            outcomes.append(ScriptFailure(FailureKind.BAD_RESULT, message, lines, notes))
        elif record["called"]:
            outcomes.append(ScriptResult(record.get("value"), lines, notes))
        elif stopped is not None:
            outcomes.append(ScriptFailure(stopped.kind, stopped.message, lines, notes))
        else:
            message = "the script ended without calling done()"
            outcomes.append(ScriptFailure(FailureKind.NO_DONE, message, lines, notes))
    if stopped is not None:
        # The record the limit stopped is the last one begun; those after it never ran.
        if outcomes:
            outcomes[-1] = stopped
        outcomes += [stopped] * (count - len(outcomes))
    elif len(outcomes) != count:
        # Only a script that replaced the built-ins the prelude's loop uses (Array.prototype's
        # push) gets here: every call still answers, none with a value the loop may have lost.
        lost = ScriptFailure(FailureKind.ERROR, _LOST)
        outcomes = [o if isinstance(o, ScriptFailure) else lost for o in outcomes[:count]]
        outcomes += [lost] * (count - len(outcomes))
    return outcomes
