"""``vendorPath`` and canonical ``path`` syntax (D37): parse, read, write, delete.

The forms Open Connectors documents::

    Name                  a key
    details.Products      dots into nested objects
    Products[0].id        an index (negative counts from the end)
    Users[*].DisplayName  every element, index for index with a ``[*]`` on the other side
    Products[id=4].name   the elements whose ``id`` is 4 (number, string or boolean alike)
    Products[?(@.id==2)]  a JSONPath filter, as RFC 9535 and python-jsonpath read it
    Products[*].size()    how many: matches of a ``[*]`` path, else the value's length

Paths of only keys, indexes and ``[*]`` are *plain*: Hubgate walks them itself (they are the
common case and the hot path) and can also write them. Filters and ``[key=value]`` are read
through python-jsonpath (a ``[key=value]`` becomes a filter); they select, so they are read-only,
as is ``.size()``. A key may hold any character but ``.``, ``[`` and ``]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import jsonpath

__all__ = [
    "ALL",
    "Match",
    "Path",
    "PathError",
    "Segment",
    "delete",
    "parse_path",
    "plain_path",
    "write",
]


class _All:
    """The ``[*]`` segment."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "[*]"


ALL: Final = _All()
Segment = str | int | _All


class PathError(ValueError):
    """A path that cannot be read; the message names the position."""


@dataclass(frozen=True, slots=True)
class Match:
    """One value found by a path, with where it was (``parts``) and its ``[*]`` indexes."""

    value: Any
    parts: tuple[str | int, ...]
    indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Path:
    """A parsed path. ``segments`` is set for plain paths; ``query`` for selecting ones.

    ``plain``: only keys, indexes and ``[*]`` (writable, read without JSONPath); ``keys``: the
    segments when they are all keys (the fast common case); ``wildcards``: how many ``[*]``;
    ``many``: whether reading may find several values. Build one with ``parse_path`` or
    ``plain_path``.
    """

    text: str
    segments: tuple[Segment, ...] | None
    query: jsonpath.JSONPath | None
    size: bool
    plain: bool = False
    keys: tuple[str, ...] | None = None
    wildcards: int = 0
    many: bool = False

    def find(self, document: Any) -> list[Match]:
        """Every value the path selects in ``document``, in document order."""
        if self.keys is not None:
            node = document
            for key in self.keys:
                if not isinstance(node, dict) or key not in node:
                    return []
                node = node[key]
            return [Match(node, self.keys, ())]
        if self.segments is not None:
            found = list(_walk(document, self.segments, 0, (), ()))
        else:
            assert self.query is not None
            found = [
                Match(m.obj, tuple(m.parts), tuple(p for p in m.parts if isinstance(p, int)))
                for m in self.query.finditer(document)
            ]
        if not self.size:
            return found
        if self.many or self.segments is None:
            return [Match(len(found), (), ())]
        if len(found) == 1 and isinstance(found[0].value, list | dict | str):
            return [Match(len(found[0].value), (), ())]
        return []


def _walk(
    node: Any,
    segments: Sequence[Segment],
    at: int,
    parts: tuple[str | int, ...],
    indexes: tuple[int, ...],
) -> Iterator[Match]:
    if at == len(segments):
        yield Match(node, parts, indexes)
        return
    segment = segments[at]
    if isinstance(segment, str):
        if isinstance(node, dict) and segment in node:
            yield from _walk(node[segment], segments, at + 1, (*parts, segment), indexes)
    elif isinstance(segment, int):
        if isinstance(node, list) and -len(node) <= segment < len(node):
            index = segment % len(node)
            yield from _walk(node[index], segments, at + 1, (*parts, index), indexes)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, segments, at + 1, (*parts, index), (*indexes, index))


# Bounds that keep a stored path from costing more than a request: an index pads lists with
# nulls up to it when written, and each segment is a level of recursion when read.
MAX_INDEX: Final = 10_000
MAX_SEGMENTS: Final = 64
MAX_LENGTH: Final = 1000
_NAME: Final = re.compile(r"[^.\[\]]+")
_INDEX: Final = re.compile(r"\[(-?\d+)\]")
_KEY_VALUE: Final = re.compile(r"\[([^=\[\]?]+)=([^\[\]]*)\]")
_NUMBER: Final = re.compile(r"-?\d+(\.\d+)?")


def _filter_end(text: str, start: int) -> int:
    """The index after the ``]`` closing the filter that starts at ``start`` (its ``[``)."""
    depth = 0
    quote = ""
    i = start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise PathError(f"unclosed filter at position {start} of {text!r}")


def _literal(value: str) -> str:
    """A ``[key=value]`` value as a JSONPath filter operand (or two, for loose typing)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return json.dumps(value[1:-1])
    if _NUMBER.fullmatch(value) or value in ("true", "false"):
        return value
    return json.dumps(value)


def _key_filter(key: str, value: str) -> str:
    operand = _literal(value)
    field = f"@[{json.dumps(key.strip())}]"
    if operand.startswith('"'):
        return f"[?{field} == {operand}]"
    # Vendors send ids as numbers or as strings: Products[id=4] finds either.
    return f"[?{field} == {operand} || {field} == {json.dumps(value.strip())}]"


@lru_cache(maxsize=4096)
def parse_path(text: str) -> Path:
    """Parse a ``path`` or ``vendorPath``; ``PathError`` says where it is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise PathError("a path must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise PathError(f"a path is at most {MAX_LENGTH} characters")
    body = text
    size = False
    if body.endswith(".size()"):
        body, size = body[: -len(".size()")], True
        if not body:
            raise PathError("'.size()' needs a path before it")
    segments: list[Segment] = []
    query_parts: list[str] = ["$"]
    selecting = False
    i = 0
    while i < len(body):
        if body[i] == ".":
            if i == 0 or i + 1 == len(body) or body[i + 1] in ".[":
                raise PathError(f"misplaced '.' at position {i} of {text!r}")
            i += 1
            continue
        if body[i] != "[":
            name = _NAME.match(body, i)
            if name is None:
                raise PathError(f"unexpected {body[i]!r} at position {i} of {text!r}")
            if i > 0 and body[i - 1] not in ".":
                raise PathError(f"expected '.' before {name.group()!r} at position {i} of {text!r}")
            segments.append(name.group())
            query_parts.append(f"[{json.dumps(name.group())}]")
            i = name.end()
            continue
        if body.startswith("[*]", i):
            segments.append(ALL)
            query_parts.append("[*]")
            i += 3
        elif index := _INDEX.match(body, i):
            digits = index.group(1).lstrip("-")
            if len(digits) > len(str(MAX_INDEX)) or int(digits) > MAX_INDEX:
                raise PathError(f"index at position {i} of {text!r} is above {MAX_INDEX}")
            segments.append(int(index.group(1)))
            query_parts.append(index.group())
            i = index.end()
        elif body.startswith("[?", i):
            end = _filter_end(body, i)
            query_parts.append(body[i:end])
            selecting = True
            i = end
        elif pair := _KEY_VALUE.match(body, i):
            query_parts.append(_key_filter(pair.group(1), pair.group(2)))
            selecting = True
            i = pair.end()
        else:
            raise PathError(f"cannot read the bracket at position {i} of {text!r}")
    if len(query_parts) - 1 > MAX_SEGMENTS:
        raise PathError(f"{text!r} has more than {MAX_SEGMENTS} parts")
    if not selecting:
        return _make(text, tuple(segments), None, size)
    query = "".join(query_parts)
    try:
        compiled = jsonpath.compile(query)
    except jsonpath.JSONPathError as error:
        raise PathError(f"cannot read the filter in {text!r}: {error}") from error
    if not isinstance(compiled, jsonpath.JSONPath):
        raise PathError(f"cannot read the filter in {text!r}")
    return _make(text, None, compiled, size)


def _make(
    text: str, segments: tuple[Segment, ...] | None, query: jsonpath.JSONPath | None, size: bool
) -> Path:
    wildcards = sum(1 for s in segments or () if s is ALL)
    keys = None
    if segments is not None and not size and all(isinstance(s, str) for s in segments):
        keys = tuple(str(s) for s in segments)
    return Path(
        text,
        segments,
        query,
        size,
        plain=segments is not None and not size,
        keys=keys,
        wildcards=wildcards,
        many=wildcards > 0 or (query is not None and "[*]" in text),
    )


def plain_path(segments: Sequence[Segment]) -> Path:
    """A plain path from its segments (for paths relative to another one)."""
    text = "".join(
        f"[{s}]" if isinstance(s, int) else "[*]" if s is ALL else f".{s}" for s in segments
    ).lstrip(".")
    return _make(text, tuple(segments), None, False)


def write(
    target: dict[str, Any], segments: Sequence[Segment], indexes: Sequence[int], value: Any
) -> None:
    """Set ``value`` at a plain path, making objects and lists on the way.

    Each ``[*]`` takes the next of ``indexes`` (the source's, so arrays map index for index);
    without one left it means the end of the list. Lists are padded with nulls.
    """
    node: Any = target
    pending = list(indexes)
    for at, segment in enumerate(segments):
        last = at == len(segments) - 1
        nxt = None if last else segments[at + 1]
        fresh: Any = {} if isinstance(nxt, str) else []
        if isinstance(segment, str):
            if last:
                node[segment] = value
                return
            child = node.get(segment)
            if not isinstance(child, dict | list) or isinstance(child, dict) != isinstance(
                fresh, dict
            ):
                child = node[segment] = fresh
            node = child
            continue
        if segment is ALL:
            index = pending.pop(0) if pending else len(node)
        else:
            assert isinstance(segment, int)
            index = segment if segment >= 0 else max(0, len(node) + segment)
        while len(node) <= index:
            node.append(None)
        if last:
            node[index] = value
            return
        child = node[index]
        if not _fits(child, fresh):
            child = node[index] = fresh
        node = child


def _fits(child: Any, fresh: dict[str, Any] | list[Any]) -> bool:
    """Whether an existing value is the kind of container the rest of the path needs."""
    return isinstance(child, dict | list) and isinstance(child, dict) == isinstance(fresh, dict)


def delete(document: Any, consumed: Sequence[tuple[str | int, ...]]) -> None:
    """Remove the values at ``consumed`` locations, then objects and lists left empty by it.

    Locations inside another consumed one are skipped; list items go from the highest index
    down so that the other locations stay valid.
    """
    chosen = set(consumed)
    kept = [p for p in chosen if p and not any(p[:n] in chosen for n in range(1, len(p)))]
    emptied: set[tuple[str | int, ...]] = set()
    for parts in sorted(kept, key=_order, reverse=True):
        parent = document
        for part in parts[:-1]:
            parent = parent[part]
        leaf = parts[-1]
        if isinstance(parent, dict):
            parent.pop(leaf, None)
        elif isinstance(parent, list) and isinstance(leaf, int) and leaf < len(parent):
            del parent[leaf]
        if not parent:
            emptied.add(parts[:-1])
    for parts in sorted(emptied, key=lambda p: (len(p), _order(p)), reverse=True):
        _prune(document, parts)


def _order(parts: tuple[str | int, ...]) -> tuple[tuple[int, str | int], ...]:
    # Siblings are all keys or all indexes, so tagging by kind keeps the sort total.
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in parts)


def _prune(document: Any, parts: tuple[str | int, ...]) -> None:
    """Remove the empty container at ``parts``, and each parent that this leaves empty."""
    while parts:
        parent = document
        for part in parts[:-1]:
            parent = parent[part]
        leaf = parts[-1]
        if isinstance(parent, dict):
            if leaf not in parent or parent[leaf]:
                return
        elif not (isinstance(leaf, int) and leaf < len(parent)) or parent[leaf]:
            return
        del parent[leaf]
        parts = parts[:-1]
