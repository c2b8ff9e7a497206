"""The common resources an instance has (D36, D38), as hub calls need them: no SQL here.

An object name is a common resource of an instance when the instance sees a definition of it
and has an effective transformation of it (its own, its account's or its organization's,
merged per D36). Each instance's set is read once and kept in memory, so that a hub call on a
vendor resource pays one dictionary lookup for the question "is this name mapped?".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hubgate.db.tenancy import Tenant
from hubgate.elements.sdk import Element, ResolvedInstance
from hubgate.transformations.changes import generation
from hubgate.transformations.mapping import (
    LEVELS,
    Level,
    Transformation,
    effective,
    parse_transformation,
    with_level,
)
from hubgate.transformations.models import ObjectDefinition, StoredTransformation
from hubgate.transformations.repository import TransformationRepository

# How long another process's change may take to reach this one (D321); this process's own
# changes apply at once (``changes``).
TTL_SECONDS: Final = 5.0
_MAX_ENTRIES: Final = 100_000


@dataclass(frozen=True, slots=True)
class CommonResource:
    """One common resource of one instance: its effective transformation and field names."""

    name: str
    transformation: Transformation
    # The definition's paths at every level the instance sees, then the mapped ones.
    known_fields: tuple[str, ...]

    @property
    def vendor_segments(self) -> tuple[str, ...]:
        """The vendor resource's path segments (``vendorName``, else the object's name)."""
        vendor_name = self.transformation.vendor_name or self.name
        return tuple(s for s in vendor_name.split("/") if s)


Mappings = Mapping[str, CommonResource]


_defaults: dict[str, tuple[Element, dict[str, Transformation]]] = {}


def element_defaults(element: Element) -> Mapping[str, Transformation]:
    """The transformations ``element`` ships (D322), read once per element."""
    found = _defaults.get(element.key)
    if found is None or found[0] is not element:
        parsed = {n: parse_transformation(b) for n, b in element.transformations.items()}
        found = (element, parsed)
        _defaults[element.key] = found
    return found[1]


def build(
    definitions: Sequence[ObjectDefinition],
    rows: Sequence[StoredTransformation],
    defaults: Mapping[str, Transformation],
) -> dict[str, CommonResource]:
    """The common resources the instance's definitions and transformations make, over its
    element's ``defaults``, which stand above the organization's level (D322)."""
    known: dict[str, list[str]] = {}
    for definition in definitions:
        paths = known.setdefault(definition.object_name, [])
        paths.extend(str(f.get("path")) for f in definition.fields if f.get("path") not in paths)
    by_name: dict[str, dict[str, Transformation]] = {}
    for row in rows:
        level = cast(Level, row.level)
        parsed = with_level(parse_transformation(row.body, level), level)
        by_name.setdefault(row.object_name, {})[row.level] = parsed
    found: dict[str, CommonResource] = {}
    for name in known:
        levels = by_name.get(name, {})
        chain = [levels[lv] for lv in LEVELS if lv in levels]
        if name in defaults:
            chain.insert(0, defaults[name])
        merged = effective(chain)
        if merged is not None:
            found[name] = CommonResource(name, merged, tuple(known[name]))
    return found


class MappingCache:
    """Each instance's common resources, per process, until a change or ``TTL_SECONDS``."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[float, int, Mappings]] = {}

    def get(self, instance: ResolvedInstance) -> Mappings | None:
        entry = self._entries.get((instance.id, instance.token_hash))
        if entry is None or entry[0] < time.monotonic() or entry[1] != generation():
            return None
        return entry[2]

    def put(self, instance: ResolvedInstance, read_at: int, mappings: Mappings) -> None:
        # What was read before a change in this process may already be stale: not kept.
        if read_at != generation():
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[(instance.id, instance.token_hash)] = (
            time.monotonic() + TTL_SECONDS,
            read_at,
            mappings,
        )


_cache = MappingCache()
# One read per instance at a time: when an entry expires under load, the calls that find it
# missing wait for the one read instead of each taking a database connection.
_reading: dict[tuple[int, str], asyncio.Future[Mappings]] = {}


async def _read(sessions: async_sessionmaker[AsyncSession], instance: ResolvedInstance) -> Mappings:
    read_at = generation()
    tenant = Tenant(instance.organization_id, instance.account_id, 0, "")
    async with sessions() as session:
        definitions, rows = await TransformationRepository(session).of_instance(
            tenant, instance.element.key, instance.id
        )
    mappings = build(definitions, rows, element_defaults(instance.element))
    _cache.put(instance, read_at, mappings)
    return mappings


def _read_done(key: tuple[int, str], reading: asyncio.Future[Mappings]) -> None:
    _reading.pop(key, None)
    if not reading.cancelled():
        reading.exception()  # its waiters have it; a read nobody waits for any more is not logged


async def mappings_of(
    sessions: async_sessionmaker[AsyncSession], instance: ResolvedInstance
) -> Mappings:
    """The instance's common resources, by object name, from memory when it can be."""
    found = _cache.get(instance)
    if found is not None:
        return found
    key = (instance.id, instance.token_hash)
    reading = _reading.get(key)
    if reading is None:
        reading = asyncio.ensure_future(_read(sessions, instance))
        _reading[key] = reading
        reading.add_done_callback(partial(_read_done, key))
    return await asyncio.shield(reading)
