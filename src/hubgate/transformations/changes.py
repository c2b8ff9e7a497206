"""A counter every write of definitions or transformations bumps, in this process.

The hub keeps each instance's common resources in memory (``resolution``); an entry made
before the last bump is not used again, so a change made here applies to the next hub call.
Other processes see it when their entries expire (D321).
"""

from __future__ import annotations

_generation = 0


def changed() -> None:
    global _generation
    _generation += 1


def generation() -> int:
    return _generation
