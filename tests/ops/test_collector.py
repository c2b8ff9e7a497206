"""The garbage collector in a running API process (D500): its young generation sized above
what requests in flight hold, and reference cycles still freed without anyone asking."""

from __future__ import annotations

import gc
import weakref

from hubgate.app import GC_YOUNG_THRESHOLD, create_app
from hubgate.settings import Settings


class _Node:
    def __init__(self) -> None:
        self.partner: _Node | None = None


def _orphaned_cycle() -> weakref.ref[_Node]:
    """Two objects that refer to each other and to nothing else: only the collector frees them."""
    first, second = _Node(), _Node()
    first.partner, second.partner = second, first
    return weakref.ref(first)


async def test_a_running_app_collects_cycles_once_garbage_builds_up(
    settings: Settings, pg_url: str
) -> None:
    # An app of its own: its lifespan sets the thresholds and puts back the ones it found.
    before = gc.get_threshold()
    app = create_app(settings, database_url=pg_url)
    async with app.router.lifespan_context(app):
        assert gc.isenabled()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        _collects_on_its_own()
    assert gc.get_threshold() == before


def _collects_on_its_own() -> None:
    gc.collect(0)  # the generation starts empty, so the count below is what triggers it
    cycle = _orphaned_cycle()
    assert cycle() is not None
    # New container objects, all kept: the young generation fills and the collector runs on
    # its own, freeing the cycle.
    kept: list[list[None]] = [[] for _ in range(GC_YOUNG_THRESHOLD // 2)]
    assert cycle() is not None
    kept += [[] for _ in range(GC_YOUNG_THRESHOLD)]
    assert cycle() is None
    assert len(kept) == GC_YOUNG_THRESHOLD * 3 // 2
