"""What a sandbox run answers, and the limits it runs under (D42)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

MIB: Final = 1024 * 1024


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
