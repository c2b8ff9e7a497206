"""The one rule every benchmark follows: a target that failed anything gets no figure (issue 16).

A benchmark measures one or more targets (a concurrency level, a phase, a proxy). Each failed
request against a target (an answer other than the one expected, a socket error, a missing or
doubled notification, a bad signature) is noted here under that target. A target with any
failure prints no figure and its numbers are not saved; the benchmark then exits non-zero.
Ratios between two targets are paired per round: the median of the per-round ratios, never
the ratio of two medians.

Standard library only, so that any benchmark (bench/proxy/run.py too) can import it.
"""

from __future__ import annotations

import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TextIO


class Failures:
    """Failed requests per target, and whether a target's figures may be reported."""

    def __init__(self) -> None:
        self.by_target: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def note(self, target: str, what: str, count: int = 1) -> None:
        if count > 0:
            self.by_target[target][what] += count

    def status(self, target: str, status: int, expected: Iterable[int] = range(200, 300)) -> bool:
        """Note an answer; False (and a failure) when it is not one of ``expected``."""
        if status in expected:
            return True
        self.note(target, f"status {status}")
        return False

    def clean(self, target: str) -> bool:
        return not self.by_target.get(target)

    def ok(self) -> bool:
        return not any(self.by_target.values())

    def figures(self, target: str, figures: dict[str, Any]) -> dict[str, Any]:
        """What may be saved for ``target``: its figures when clean, else only its failures."""
        if self.clean(target):
            return figures
        return {"failures": dict(self.by_target[target])}

    def report(self, target: str, line: Callable[[], str], out: TextIO = sys.stdout) -> None:
        """Print ``line()`` (a figure) only when the target is clean; otherwise why there is
        none. A callable, since a failed target's figures may not even exist."""
        if self.clean(target):
            print(line(), file=out)
        else:
            print(f"{target}: FAILED, no figure: {self.describe(target)}", file=out)

    def describe(self, target: str) -> str:
        return ", ".join(f"{what} x{n}" for what, n in sorted(self.by_target[target].items()))

    def as_json(self) -> dict[str, dict[str, int]]:
        return {target: dict(counts) for target, counts in self.by_target.items() if counts}

    def exit_code(self) -> int:
        """1 when any target failed anything, else 0; says which on stderr."""
        if self.ok():
            return 0
        for target in sorted(self.by_target):
            if self.by_target[target]:
                print(f"{target}: {self.describe(target)}", file=sys.stderr)
        return 1


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of per-round ratios: round i of one target against round i of the other."""
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError("a paired ratio needs the same non-zero number of rounds on each side")
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))
