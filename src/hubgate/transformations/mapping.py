"""The mapping engine (D36, D37): vendor objects to canonical ones and back, then the script.

A transformation is read from its wire body (``parse_transformation``), the levels of an
instance are merged (``effective``), and then::

    canonical = from_vendor(transformation, vendor_object)      # answers
    vendor = to_vendor(transformation, canonical_object)        # request bodies
    objects, error = await transform(t, vendor_objects, from_vendor=True, limits=...)  # both
    # error: "transformation script failed: <reason>", the value of Elements-Error

Field mapping, per direction (``fromVendor`` reads ``vendorPath`` and writes ``path``;
``toVendor`` reads ``path`` and writes ``vendorWritePath``, else ``vendorPath``):

* The value found is copied (objects and arrays deep-copied). A ``[*]`` on both sides maps
  index for index (``users[*].name`` <- ``Users[*].DisplayName``); a ``[*]`` only on the read
  side gives a list; a filter or ``[key=value]`` gives its first match; ``.size()`` a count.
  A field whose source is missing is left out; one whose write path is not plain (a filter,
  ``[key=value]``, ``.size()``) is read-only and skipped towards the vendor.
* Field options: ``remove`` true, or field-level ``passThrough`` false, for a direction drops
  the field in that direction (the Open Connectors tests expect both to empty the field).
* ``transformDate`` ``{"pattern": "<Java pattern>"}`` formats the canonical side: from the
  vendor, a value that reads as a timestamp (ISO 8601, RFC 2822, as CEQL reads them) is written
  in that pattern, in UTC; towards the vendor, a canonical value that reads as a timestamp is
  written in ``vendorPattern`` (default ISO 8601 ``yyyy-MM-dd'T'HH:mm:ssXXX``). A value that is
  not a timestamp is copied as it is.
* Unmapped fields: every part of the source object that no field read passes through under its
  own name, unless the object-level ``passThrough`` is false for the direction ("remove
  unmapped fields"). Mapped fields win over passed-through ones of the same name. Inside an
  array mapped whole (``users`` <- ``Users[*]``), the sub-fields that other fields map are
  renamed, not copied twice.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Literal

from hubgate.kit.ceql_values import as_datetime
from hubgate.kit.javadate import format_java
from hubgate.kit.sandbox import (
    Limits,
    Outcome,
    ScriptFailure,
    ScriptResult,
    run_many,
    run_many_async,
)
from hubgate.transformations.paths import (
    ALL,
    Match,
    Path,
    PathError,
    delete,
    parse_path,
    plain_path,
    write,
)

__all__ = [
    "LEVELS",
    "SCRIPT_PARAMS",
    "Directions",
    "FieldMapping",
    "Level",
    "Transformation",
    "TransformationError",
    "effective",
    "from_vendor",
    "parse_transformation",
    "script_step",
    "script_step_async",
    "to_vendor",
    "transform",
    "with_level",
]

Level = Literal["organization", "account", "instance"]
LEVELS: Final[tuple[Level, ...]] = ("organization", "account", "instance")
SCRIPT_PARAMS: Final = ("originalObject", "transformedObject", "fromVendor")
_ISO: Final = "yyyy-MM-dd'T'HH:mm:ssXXX"
_FIELD_OPTIONS: Final = ("remove", "passThrough", "transformDate")
_OBJECT_OPTIONS: Final = ("passThrough", "inherit")


class TransformationError(ValueError):
    """A transformation body that cannot be used; the message names the part (for a 400)."""


@dataclass(frozen=True, slots=True)
class Directions:
    """A per-direction flag, as Open Connectors' ``{"fromVendor": b, "toVendor": b}``."""

    from_vendor: bool
    to_vendor: bool

    def get(self, from_vendor: bool) -> bool:
        return self.from_vendor if from_vendor else self.to_vendor


_NEITHER: Final = Directions(False, False)
_BOTH: Final = Directions(True, True)


@dataclass(frozen=True, slots=True, eq=False)
class FieldMapping:
    path: Path
    vendor_path: Path
    vendor_write_path: Path | None = None
    type: str | None = None
    vendor_type: str | None = None
    dropped: Directions = _NEITHER
    date_pattern: str | None = None
    vendor_date_pattern: str | None = None
    level: Level | None = None
    # The field's wire body, for the routes to echo.
    raw: Mapping[str, Any] = field(default_factory=dict)

    def reads(self, from_vendor: bool) -> Path:
        return self.vendor_path if from_vendor else self.path

    def writes(self, from_vendor: bool) -> Path:
        return self.path if from_vendor else (self.vendor_write_path or self.vendor_path)


@dataclass(frozen=True, slots=True, eq=False)
class Transformation:
    vendor_name: str | None
    fields: tuple[FieldMapping, ...]
    pass_through: Directions = _BOTH
    inherit: bool = False
    script: str | None = None
    level: Level | None = None

    @property
    def field_paths(self) -> tuple[str, ...]:
        return tuple(f.path.text for f in self.fields)


# ------------------------------------------------------------------------------ parsing


def _directions(properties: object, where: str) -> Directions:
    if not isinstance(properties, Mapping):
        raise TransformationError(f"{where}: 'properties' must be an object")
    values = {}
    for name in ("fromVendor", "toVendor"):
        value = properties.get(name, False)
        if not isinstance(value, bool):
            raise TransformationError(f"{where}: '{name}' must be true or false")
        values[name] = value
    return Directions(values["fromVendor"], values["toVendor"])


def _options(raw: object, where: str, known: tuple[str, ...]) -> list[tuple[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TransformationError(f"{where}: 'configuration' must be a list")
    found = []
    for n, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str):
            raise TransformationError(f"{where}: configuration[{n}] needs a 'type'")
        if entry["type"] not in known:
            raise TransformationError(
                f"{where}: configuration type {entry['type']!r} is not one of {', '.join(known)}"
            )
        found.append((entry["type"], entry.get("properties", {})))
    return found


def _path(raw: object, where: str) -> Path:
    if not isinstance(raw, str):
        raise TransformationError(f"{where} must be a string")
    try:
        return parse_path(raw)
    except PathError as error:
        raise TransformationError(f"{where}: {error}") from error


def _pattern(properties: object, name: str, where: str) -> str:
    pattern = properties.get(name) if isinstance(properties, Mapping) else None
    if not isinstance(pattern, str) or not pattern:
        raise TransformationError(f"{where}: transformDate needs a '{name}' string")
    try:
        format_java(pattern, datetime(2000, 1, 1, tzinfo=UTC))
    except ValueError as error:
        raise TransformationError(f"{where}: {error}") from error
    return pattern


def _field(raw: object, n: int, level: Level | None) -> FieldMapping:
    where = f"fields[{n}]"
    if not isinstance(raw, Mapping):
        raise TransformationError(f"{where} must be an object")
    path = _path(raw.get("path"), f"{where}.path")
    if not path.plain:
        raise TransformationError(f"{where}.path: a canonical path takes only names, [n] and [*]")
    vendor_path = _path(raw.get("vendorPath"), f"{where}.vendorPath")
    write_path = None
    if raw.get("vendorWritePath") is not None:
        write_path = _path(raw["vendorWritePath"], f"{where}.vendorWritePath")
        if not write_path.plain:
            raise TransformationError(
                f"{where}.vendorWritePath: only names, [n] and [*] are writable"
            )
    dropped = _NEITHER
    date_pattern = vendor_date_pattern = None
    for kind, properties in _options(raw.get("configuration"), where, _FIELD_OPTIONS):
        if kind == "remove":
            flags = _directions(properties, where)
            dropped = Directions(
                dropped.from_vendor or flags.from_vendor, dropped.to_vendor or flags.to_vendor
            )
        elif kind == "passThrough":
            flags = _directions(properties, where)
            dropped = Directions(
                dropped.from_vendor or not flags.from_vendor,
                dropped.to_vendor or not flags.to_vendor,
            )
        else:
            date_pattern = _pattern(properties, "pattern", where)
            if isinstance(properties, Mapping) and properties.get("vendorPattern") is not None:
                vendor_date_pattern = _pattern(properties, "vendorPattern", where)
    for name in ("type", "vendorType"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise TransformationError(f"{where}.{name} must be a string")
    return FieldMapping(
        path=path,
        vendor_path=vendor_path,
        vendor_write_path=write_path,
        type=raw.get("type"),
        vendor_type=raw.get("vendorType"),
        dropped=dropped,
        date_pattern=date_pattern,
        vendor_date_pattern=vendor_date_pattern,
        # The level that stores the field, whatever a body echoed from a merged view says.
        level=level,
        raw=dict(raw),
    )


def parse_transformation(body: Mapping[str, Any], level: Level | None = None) -> Transformation:
    """Read a transformation body (A.3 of the background); ``TransformationError`` if bad."""
    if not isinstance(body, Mapping):
        raise TransformationError("a transformation must be an object")
    vendor_name = body.get("vendorName")
    if vendor_name is not None and (not isinstance(vendor_name, str) or not vendor_name):
        raise TransformationError("vendorName must be a non-empty string")
    raw_fields = body.get("fields", [])
    if raw_fields is None:
        raw_fields = []
    if not isinstance(raw_fields, list):
        raise TransformationError("fields must be a list")
    fields = tuple(_field(raw, n, level) for n, raw in enumerate(raw_fields))
    seen: set[str] = set()
    for mapped in fields:
        if mapped.path.text in seen:
            raise TransformationError(f"the path {mapped.path.text!r} is mapped twice")
        seen.add(mapped.path.text)
    pass_through = _BOTH
    inherit = False
    for kind, properties in _options(body.get("configuration"), "transformation", _OBJECT_OPTIONS):
        if kind == "inherit":
            inherit = True
        else:
            pass_through = _directions(properties, "transformation")
    script = body.get("script")
    script_body = None
    if script is not None:
        if not isinstance(script, Mapping) or not isinstance(script.get("body", ""), str):
            raise TransformationError("script must be an object with a 'body' string")
        script_body = script.get("body") or None
    return Transformation(vendor_name, fields, pass_through, inherit, script_body, level)


def effective(levels: Sequence[Transformation]) -> Transformation | None:
    """The transformation an instance uses (D36), from its levels, highest first.

    The most specific level wins; when it says ``inherit``, the next level up is merged in
    (and so on while each says ``inherit``): fields are the union, a lower level's field
    replacing a higher one's on the same ``path`` in place; vendor name, script and
    ``passThrough`` come from the most specific level that has them (its own fields always
    keep their ``level``).
    """
    if not levels:
        return None
    chain = [levels[-1]]
    for upper in reversed(levels[:-1]):
        if not chain[-1].inherit:
            break
        chain.append(upper)
    merged: dict[str, FieldMapping] = {}
    for step in reversed(chain):  # highest first, so lower levels overwrite in place
        for mapped in step.fields:
            merged[mapped.path.text] = mapped
    lowest = chain[0]
    explicit_pass = next(
        (t.pass_through for t in chain if t.pass_through != _BOTH), lowest.pass_through
    )
    return Transformation(
        vendor_name=next((t.vendor_name for t in chain if t.vendor_name), None),
        fields=tuple(merged.values()),
        pass_through=explicit_pass,
        inherit=lowest.inherit,
        script=next((t.script for t in chain if t.script), None),
        level=lowest.level,
    )


# ------------------------------------------------------------------------------ mapping


_SCALARS: Final = (str, int, float, bool, type(None))


def _copy(value: Any) -> Any:
    # Most values are scalars; deepcopy's dispatch costs more than the mapping itself.
    return value if isinstance(value, _SCALARS) else copy.deepcopy(value)


def _convert_date(value: Any, pattern: str) -> Any:
    moment = as_datetime(value)
    if moment is None:
        return value
    return format_java(pattern, moment.astimezone(UTC))


@dataclass(frozen=True, slots=True, eq=False)
class _Rule:
    """One field for one direction: where to read, where to write, what else to do."""

    read: Path
    write: Path
    dropped: bool
    date_pattern: str | None
    # Fields that map parts of each item this one copies (array-to-array, nested objects).
    children: tuple[_Rule, ...] = ()


def _rule(mapped: FieldMapping, from_vendor_: bool) -> _Rule:
    date = None
    if mapped.date_pattern is not None:
        date = mapped.date_pattern if from_vendor_ else (mapped.vendor_date_pattern or _ISO)
    return _Rule(
        mapped.reads(from_vendor_),
        mapped.writes(from_vendor_),
        mapped.dropped.get(from_vendor_),
        date,
    )


def _relative(parent: _Rule, child: _Rule) -> _Rule | None:
    """``child`` as a rule inside each item ``parent`` copies, or None if it is not inside."""
    p_read, p_write, read, written = parent.read, parent.write, child.read, child.write
    if not (p_read.plain and p_write.plain and read.plain and written.plain):
        return None
    p_reads, p_writes = p_read.segments or (), p_write.segments or ()
    reads, writes = read.segments or (), written.segments or ()
    if reads[: len(p_reads)] != p_reads or writes[: len(p_writes)] != p_writes:
        return None
    rest_read, rest_write = list(reads[len(p_reads) :]), list(writes[len(p_writes) :])
    # `users` <- `Users[*]` makes a list, so its parts say `users[*].x`: that [*] is the item.
    if p_read.wildcards > p_write.wildcards and rest_write[:1] == [ALL]:
        rest_write.pop(0)
    elif p_write.wildcards > p_read.wildcards and rest_read[:1] == [ALL]:
        rest_read.pop(0)
    if not rest_read or not rest_write or not isinstance(rest_read[0], str):
        return None
    if not isinstance(rest_write[0], str):
        return None
    return replace(child, read=plain_path(rest_read), write=plain_path(rest_write))


def _depth(rule: _Rule) -> int:
    return len(rule.write.segments or ())


def _nest(rules: list[_Rule]) -> tuple[_Rule, ...]:
    """Give each rule the rules of the parts it copies; return the outermost ones."""
    by_depth = sorted(rules, key=lambda r: len(r.read.segments or ()))
    placed: dict[int, list[_Rule]] = {id(r): [] for r in by_depth}
    top: list[_Rule] = []
    relative: dict[int, _Rule] = {}
    for n, rule in enumerate(by_depth):
        for parent in reversed(by_depth[:n]):
            inner = _relative(parent, rule)
            if inner is not None and not parent.dropped:
                placed[id(parent)].append(rule)
                relative[id(rule)] = inner
                break
        else:
            top.append(rule)

    def build(rule: _Rule, as_rule: _Rule) -> _Rule:
        kids = placed[id(rule)]
        if not kids:
            return as_rule
        inner = sorted((build(kid, relative[id(kid)]) for kid in kids), key=_depth)
        return replace(as_rule, children=tuple(inner))

    built = [build(rule, rule) for rule in top]
    # Shallow write paths first, so that a deeper one lands inside what they made.
    built.sort(key=_depth)
    return tuple(built)


@lru_cache(maxsize=512)
def _rules(transformation: Transformation, from_vendor_: bool) -> tuple[_Rule, ...]:
    return _nest([_rule(f, from_vendor_) for f in transformation.fields])


@lru_cache(maxsize=512)
def _write_roots(rules: tuple[_Rule, ...]) -> frozenset[str]:
    """The top-level keys that fields write below (not at): they may hold shared values."""
    return frozenset(
        str(r.write.segments[0])
        for r in rules
        if r.write.segments and len(r.write.segments) > 1 and isinstance(r.write.segments[0], str)
    )


def _convert(rule: _Rule, value: Any, keep_unmapped: bool) -> Any:
    if rule.children and isinstance(value, Mapping):
        return _apply(rule.children, keep_unmapped, value)
    value = _copy(value)
    return value if rule.date_pattern is None else _convert_date(value, rule.date_pattern)


def _detached(
    source: Mapping[str, Any], consumed: list[tuple[str | int, ...]], written: frozenset[str]
) -> dict[str, Any]:
    """A copy of ``source`` to take ``consumed`` out of and write fields into.

    Only what can change is copied: the containers on the way to a consumed value, and the
    top-level values that a field's write path goes into (``written``); the rest is shared, so
    the source is never changed.
    """
    out = dict(source)
    copied: set[int] = {id(out)}
    for key in written & out.keys():
        if isinstance(out[key], dict | list):
            out[key] = copy.deepcopy(out[key])
            copied.add(id(out[key]))
    for parts in consumed:
        node: Any = out
        for part in parts[:-1]:
            try:
                child = node[part]
            except (KeyError, IndexError, TypeError):
                break
            if not isinstance(child, dict | list):
                break
            if id(child) not in copied:
                child = child.copy()
                node[part] = child
                copied.add(id(child))
            node = child
    delete(out, consumed)
    return out


@lru_cache(maxsize=512)
def _key_to_key(rules: tuple[_Rule, ...]) -> tuple[tuple[str, str], ...] | None:
    """``(read key, write key)`` of each rule when every one copies a top-level value to a
    top-level name as it is (the common case), else None; dropped rules are left out."""
    plan = []
    for rule in rules:
        if rule.dropped:
            continue
        reads, writes = rule.read.keys, rule.write.keys
        if (
            reads is None
            or writes is None
            or len(reads) != 1
            or len(writes) != 1
            or rule.children
            or rule.date_pattern is not None
        ):
            return None
        plan.append((reads[0], writes[0]))
    return tuple(plan)


def _apply(
    rules: tuple[_Rule, ...], keep_unmapped: bool, source: Mapping[str, Any]
) -> dict[str, Any]:
    if not keep_unmapped:
        plan = _key_to_key(rules)
        if plan is not None:
            # What the general walk below does for such rules, without its Match objects.
            copied: dict[str, Any] = {}
            for read_key, write_key in plan:
                if read_key in source:
                    copied[write_key] = _copy(source[read_key])
            return copied
    found = [(rule, rule.read.find(source)) for rule in rules]
    out: dict[str, Any] = {}
    if keep_unmapped:
        consumed = [m.parts for _, matches in found for m in matches if m.parts]
        out = _detached(source, consumed, _write_roots(rules))
    for rule, matches in found:
        if rule.dropped or not matches or not rule.write.plain:
            continue
        write_keys = rule.write.keys
        many = rule.read.many and not rule.read.size
        if write_keys is not None and len(write_keys) == 1 and not many:
            out[write_keys[0]] = _convert(rule, matches[0].value, keep_unmapped)
            continue
        segments = rule.write.segments
        assert segments is not None
        if not many and rule.write.wildcards > rule.read.wildcards:
            # A whole list towards a `[*]` path (`users` -> `Users[*]`): item for item.
            whole = matches[0]
            if isinstance(whole.value, list):
                matches = [
                    Match(item, (*whole.parts, n), (*whole.indexes, n))
                    for n, item in enumerate(whole.value)
                ]
                many = True
        if many and rule.write.wildcards:
            for match in matches:
                value = _convert(rule, match.value, keep_unmapped)
                write(out, segments, match.indexes[-rule.write.wildcards :], value)
        elif many:
            write(out, segments, (), [_convert(rule, m.value, keep_unmapped) for m in matches])
        else:
            write(out, segments, (), _convert(rule, matches[0].value, keep_unmapped))
    return out


def _map(transformation: Transformation, source: Any, from_vendor_: bool) -> dict[str, Any]:
    if not isinstance(source, Mapping):
        raise TransformationError("only objects can be mapped")
    return _apply(
        _rules(transformation, from_vendor_), transformation.pass_through.get(from_vendor_), source
    )


def from_vendor(transformation: Transformation, vendor_object: Mapping[str, Any]) -> dict[str, Any]:
    """A vendor object in the canonical shape (answers)."""
    return _map(transformation, vendor_object, True)


def to_vendor(
    transformation: Transformation, canonical_object: Mapping[str, Any]
) -> dict[str, Any]:
    """A canonical object in the vendor's shape (request bodies)."""
    return _map(transformation, canonical_object, False)


# ------------------------------------------------------------------------------ the script


def _script_inputs(
    originals: Sequence[Any], mapped: Sequence[Any], from_vendor_: bool
) -> list[dict[str, Any]]:
    return [
        {"originalObject": o, "transformedObject": m, "fromVendor": from_vendor_}
        for o, m in zip(originals, mapped, strict=True)
    ]


def _settle(mapped: Sequence[Any], outcomes: Sequence[Outcome]) -> tuple[list[Any], str | None]:
    objects: list[Any] = []
    reason: str | None = None
    for current, outcome in zip(mapped, outcomes, strict=True):
        if isinstance(outcome, ScriptResult):
            objects.append(outcome.value)
            continue
        assert isinstance(outcome, ScriptFailure)
        objects.append(current)
        reason = reason or f"transformation script failed: {outcome.reason()}"
    return objects, reason


def script_step(
    transformation: Transformation,
    originals: Sequence[Any],
    mapped: Sequence[Any],
    *,
    from_vendor: bool,
    limits: Limits,
) -> tuple[list[Any], str | None]:
    """Run the transformation's script over every mapped object, in one context (D37, D42).

    Returns the objects (the script's value, or the mapped object where it failed) and, for
    ``Elements-Error``, ``transformation script failed: <first failure's reason>`` (None when
    all succeeded or there is no script). Blocks while the script runs: async callers use
    ``script_step_async``.
    """
    if transformation.script is None or not mapped:
        return list(mapped), None
    outcomes = run_many(
        transformation.script, SCRIPT_PARAMS, _script_inputs(originals, mapped, from_vendor), limits
    )
    return _settle(mapped, outcomes)


async def script_step_async(
    transformation: Transformation,
    originals: Sequence[Any],
    mapped: Sequence[Any],
    *,
    from_vendor: bool,
    limits: Limits,
) -> tuple[list[Any], str | None]:
    """``script_step`` in the sandbox's thread pool (D240)."""
    if transformation.script is None or not mapped:
        return list(mapped), None
    outcomes = await run_many_async(
        transformation.script, SCRIPT_PARAMS, _script_inputs(originals, mapped, from_vendor), limits
    )
    return _settle(mapped, outcomes)


async def transform(
    transformation: Transformation,
    objects: Sequence[Mapping[str, Any]],
    *,
    from_vendor: bool,
    limits: Limits,
) -> tuple[list[Any], str | None]:
    """Map every object, then run the script over all of them in one context (D37, D42).

    ``from_vendor`` true: vendor objects (an answer's records) become canonical ones; false:
    canonical objects (a request body) become vendor-shaped. Returns the objects and the
    ``Elements-Error`` text when the script failed (the mapped objects are then the answer).
    """
    mapped = [_map(transformation, item, from_vendor) for item in objects]
    return await script_step_async(
        transformation, objects, mapped, from_vendor=from_vendor, limits=limits
    )


def with_level(transformation: Transformation, level: Level) -> Transformation:
    """The same transformation stored at ``level``: fields without a level get it."""
    return replace(
        transformation,
        level=level,
        fields=tuple(f if f.level else replace(f, level=level) for f in transformation.fields),
    )
