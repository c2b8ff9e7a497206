"""CEQL value semantics: finding a field in a record, and comparing what is found with a literal.

Field resolution (``resolve_field``): CEQL field names follow the vendor's *query* spelling
(Twilio: ``DateSent``) while records keep the vendor's *response* spelling (``date_sent``). A key
matches, in this order of preference: exactly; ignoring case; ignoring case and underscores (so
``DateSent``, ``datesent`` and ``DATE_SENT`` all find ``date_sent``, and ``friendlyName`` finds
``friendly_name``). When several keys match at the same level of preference the first in the
record's order wins. A dotted name is first tried as one key (a backticked
`` `metaData.lastUpdateTime` `` may be a literal key), then as a path into nested mappings,
longest key first; numeric segments index into lists (``media.0.url``).

Comparison (``compare``) is SQL-like and returns ``None`` for "unknown": a null or missing field,
or values that cannot be compared meaningfully (text against a number, a dict against anything).

* Number literal: the record value compares numerically if it is a number or a numeric string
  (``"2"``, ``"-0.00750"``, ``"1e3"``); booleans are never numbers.
* Boolean literal: the record value must be a boolean or the string ``true``/``false``
  (any case).
* String literal: when both sides read as timestamps they compare as aware datetimes; otherwise
  strings compare as strings, case-sensitively, by code point. A number in the record compares
  with a numeric string literal numerically; a boolean with ``'true'``/``'false'``.

Timestamps recognised: ISO 8601 extended form ``YYYY-MM-DD`` or ``YYYY-MM-DD[T ]HH:MM[:SS[.f]]``
with ``Z``, ``±HH:MM``, ``±HHMM`` or ``±HH`` (no zone, and a date alone, mean UTC; a date alone
is midnight UTC), and RFC 2822 as Twilio writes it (``Fri, 24 May 2019 17:18:27 +0000``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final

from hubgate.kit.ceql_syntax import Value

__all__ = [
    "as_datetime",
    "as_number",
    "compare",
    "like_match",
    "locate",
    "resolve_field",
    "sort_key",
]

_DIGITS: Final = frozenset("0123456789")
# Resolution through paths with more segments than this only tries the whole name as one key;
# it bounds the search on hostile field names without limiting any real document shape.
_MAX_PATH_SEGMENTS: Final = 32


# ---------------------------------------------------------------------------------------------
# Field resolution.


def _loose(name: str) -> str:
    return name.casefold().replace("_", "")


_NOT_FOUND: Final = object()


def _match_key(mapping: Mapping[Any, Any], name: str) -> Any:
    """The key of ``mapping`` that ``name`` designates, or ``_NOT_FOUND``."""
    if name in mapping:
        return name
    folded = name.casefold()
    for key in mapping:
        if isinstance(key, str) and key.casefold() == folded:
            return key
    loose = _loose(name)
    for key in mapping:
        if isinstance(key, str) and _loose(key) == loose:
            return key
    return _NOT_FOUND


def locate(
    obj: Any, field: str, *, index_lists: bool = True
) -> tuple[Any, tuple[str | int, ...]] | None:
    """Find ``field`` in ``obj``: ``(value, the actual keys walked)``, or None if absent."""
    parts = field.split(".")
    if len(parts) > _MAX_PATH_SEGMENTS:
        parts = [field]
    # Remember (object, segment index) pairs that failed: with keys that themselves contain
    # dots the search branches, and this keeps it linear in the number of (object, segment).
    failed: set[tuple[int, int]] = set()

    def walk(node: Any, start: int) -> tuple[Any, tuple[str | int, ...]] | None:
        if (id(node), start) in failed:
            return None
        for stop in range(len(parts), start, -1):  # the longest key first
            name = ".".join(parts[start:stop])
            key: Any
            if isinstance(node, Mapping):
                key = _match_key(node, name)
                if key is _NOT_FOUND:
                    continue
                value = node[key]
            elif (
                index_lists
                and stop == start + 1
                and isinstance(node, Sequence)
                and not isinstance(node, str | bytes | bytearray)
                and name
                and all(ch in _DIGITS for ch in name)
                and int(name) < len(node)
            ):
                key = int(name)
                value = node[key]
            else:
                continue
            if stop == len(parts):
                return value, (key,)
            found = walk(value, stop)
            if found is not None:
                return found[0], (key, *found[1])
        failed.add((id(node), start))
        return None

    return walk(obj, 0)


def resolve_field(record: Mapping[str, Any], field: str) -> Any:
    """The default field resolver: the value at ``field`` in ``record``, or None if missing."""
    found = locate(record, field)
    return None if found is None else found[0]


# ---------------------------------------------------------------------------------------------
# Numbers.


def _numeric_text(text: str) -> bool:
    """``[+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?``, nothing else."""
    i = 0
    n = len(text)
    if i < n and text[i] in "+-":
        i += 1
    start = i
    while i < n and text[i] in _DIGITS:
        i += 1
    whole = i - start
    fraction = 0
    if i < n and text[i] == ".":
        i += 1
        start = i
        while i < n and text[i] in _DIGITS:
            i += 1
        fraction = i - start
    if whole == 0 and fraction == 0:
        return False
    if i < n and text[i] in "eE":
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        start = i
        while i < n and text[i] in _DIGITS:
            i += 1
        if i == start:
            return False
    return i == n


def as_number(value: Any) -> Decimal | None:
    """A record or literal value as an exact number, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr() is the shortest text that round-trips, so 0.1 compares equal to the literal 0.1
        return None if math.isnan(value) else Decimal(repr(value))
    if isinstance(value, Decimal):
        return None if value.is_nan() else value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 200 or not _numeric_text(text):
            return None
        try:
            return Decimal(text)
        except (InvalidOperation, ValueError):  # e.g. an exponent beyond what Decimal holds
            return None
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().casefold()
        if text in ("true", "false"):
            return text == "true"
    return None


# ---------------------------------------------------------------------------------------------
# Timestamps.

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_DAY_NAMES: Final = frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
# RFC 2822 section 4.3 obsolete zone names, still seen in the wild.
_RFC_ZONES: Final = {
    "GMT": 0,
    "UT": 0,
    "UTC": 0,
    "Z": 0,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
}


def _digits(text: str, count: int | None = None) -> int | None:
    if not text or (count is not None and len(text) != count):
        return None
    if not all(ch in _DIGITS for ch in text):
        return None
    return int(text)


def _offset(text: str) -> timezone | None:
    """``±HH:MM``, ``±HHMM`` or ``±HH`` as a fixed zone."""
    if len(text) < 3 or text[0] not in "+-":
        return None
    body = text[1:].replace(":", "", 1) if len(text) == 6 and text[3] == ":" else text[1:]
    hours = _digits(body[:2], 2)
    minutes = _digits(body[2:], 2) if len(body) > 2 else 0
    if hours is None or minutes is None or len(body) not in (2, 4) or minutes >= 60:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    if delta >= timedelta(hours=24):
        return None
    return timezone(-delta if text[0] == "-" else delta)


def _parse_clock(text: str) -> tuple[int, int, int, int, str] | None:
    """``HH:MM[:SS[.fraction]]`` then the rest: (hour, minute, second, microsecond, rest)."""
    hour, minute = _digits(text[0:2], 2), _digits(text[3:5], 2)
    if hour is None or minute is None or text[2:3] != ":":
        return None
    second = micro = 0
    rest = text[5:]
    if rest.startswith(":"):
        parsed = _digits(rest[1:3], 2)
        if parsed is None:
            return None
        second = parsed
        rest = rest[3:]
        if rest[:1] in (".", ","):
            end = 1
            while end < len(rest) and rest[end] in _DIGITS:
                end += 1
            if end == 1:
                return None
            micro = int(rest[1:end][:6].ljust(6, "0"))  # finer than a microsecond: truncated
            rest = rest[end:]
    return hour, minute, second, micro, rest


def _parse_iso(text: str) -> datetime | None:
    if len(text) < 10 or text[4] != "-" or text[7] != "-":
        return None
    year, month, day = _digits(text[0:4], 4), _digits(text[5:7], 2), _digits(text[8:10], 2)
    if year is None or month is None or day is None:
        return None
    clock: tuple[int, int, int, int, str] = (0, 0, 0, 0, "")
    if len(text) > 10:
        if text[10] not in "Tt ":
            return None
        parsed = _parse_clock(text[11:])
        if parsed is None:
            return None
        clock = parsed
    hour, minute, second, micro, rest = clock
    zone = UTC if rest in ("", "Z", "z") else _offset(rest)
    if zone is None:
        return None
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError:  # 2026-02-30, 25:00, a leap second...
        return None


def _parse_rfc2822(text: str) -> datetime | None:
    parts = text.split()
    if parts and parts[0].endswith(","):
        if parts[0][:-1].casefold() not in _DAY_NAMES:
            return None
        parts = parts[1:]
    if len(parts) != 5:
        return None
    day_text, month_text, year_text, clock, zone_text = parts
    day, year = _digits(day_text), _digits(year_text, 4)
    month = _MONTHS.get(month_text.casefold())
    pieces = clock.split(":")
    if day is None or year is None or month is None or len(pieces) not in (2, 3):
        return None
    numbers = [_digits(piece, 2) for piece in pieces]
    if any(number is None for number in numbers) or len(day_text) > 2:
        return None
    hour, minute = numbers[0], numbers[1]
    second = numbers[2] if len(numbers) == 3 else 0
    zone: timezone | None
    if zone_text.upper() in _RFC_ZONES:
        zone = timezone(timedelta(hours=_RFC_ZONES[zone_text.upper()]))
    else:
        zone = _offset(zone_text) if len(zone_text) == 5 else None
    if zone is None or hour is None or minute is None or second is None:
        return None
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None


# No timestamp form is longer; checked before the cache so that long record values (message
# bodies) are neither parsed nor kept alive by it.
_MAX_TIMESTAMP_LENGTH: Final = 64


@lru_cache(maxsize=4096)  # the same literal and record values recur across records and calls
def _parse_timestamp(text: str) -> datetime | None:
    text = text.strip()
    return _parse_iso(text) or _parse_rfc2822(text)


def as_datetime(value: Any) -> datetime | None:
    """A record or literal value as an aware datetime, or None if it is not a timestamp."""
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and len(value) <= _MAX_TIMESTAMP_LENGTH:
        return _parse_timestamp(value)
    return None


# ---------------------------------------------------------------------------------------------
# Comparison and ordering.


def _sign(left: Any, right: Any) -> int:
    return -1 if left < right else (1 if left > right else 0)


def compare(actual: Any, literal: Value) -> int | None:
    """Three-way compare a record value with a literal (-1, 0, 1), or None when unknown."""
    if actual is None:
        return None
    if isinstance(literal, bool):
        flag = _as_bool(actual)
        return None if flag is None else _sign(flag, literal)
    if isinstance(literal, int | Decimal):
        number = as_number(actual)
        return None if number is None else _sign(number, Decimal(literal))
    # A string literal: the record value decides how to read it.
    if isinstance(actual, str):
        literal_time = as_datetime(literal)
        if literal_time is not None:
            actual_time = as_datetime(actual)
            if actual_time is not None:
                return _sign(actual_time, literal_time)
        return _sign(actual, literal)
    if isinstance(actual, bool):
        flag = _as_bool(literal)
        return None if flag is None else _sign(actual, flag)
    if isinstance(actual, int | float | Decimal):
        left, right = as_number(actual), as_number(literal)
        return None if left is None or right is None else _sign(left, right)
    if isinstance(actual, date):
        left_time, right_time = as_datetime(actual), as_datetime(literal)
        if left_time is None or right_time is None:
            return None
        return _sign(left_time, right_time)
    return None


def sort_key(value: Any) -> tuple[int, Any]:
    """An ordering key for a non-null value: timestamps, then numbers, booleans, strings, rest.

    Ranks keep the key total over mixed columns (Python refuses to order a str against a
    Decimal); within a rank values order as ``compare`` would order them.
    """
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, date | str):
        moment = as_datetime(value)
        if moment is not None:
            return (0, moment)
    number = as_number(value)
    if number is not None:
        return (1, number)
    if isinstance(value, str):
        return (3, value)
    return (4, 0)  # dicts, lists, NaN...: all equal, so a stable sort keeps their order


def text_of(value: Any) -> str | None:
    """What LIKE matches against: scalars as text; null, dicts and lists have none."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    return None


def like_match(text: str, pattern: str) -> bool:
    """SQL LIKE, case-insensitive: ``%`` matches any run, ``_`` exactly one character.

    The classic two-pointer wildcard match (backtrack only to the last ``%``) runs in
    O(len(text) * len(pattern)) worst case, unlike a backtracking regex.
    """
    # Fold character by character so '_' still means one character of the original text.
    chars = [ch.casefold() for ch in text]
    wild = [None if ch in "%_" else ch.casefold() for ch in pattern]
    t = p = 0
    star = -1  # pattern index just after the last '%'
    star_t = 0  # text index that '%' currently stops before
    while t < len(chars):
        if p < len(pattern) and pattern[p] == "%":
            star = p + 1
            star_t = t
            p += 1
        elif p < len(pattern) and (pattern[p] == "_" or wild[p] == chars[t]):
            p += 1
            t += 1
        elif star >= 0:
            star_t += 1  # let the last '%' swallow one more character and retry
            t = star_t
            p = star
        else:
            return False
    while p < len(pattern) and pattern[p] == "%":
        p += 1
    return p == len(pattern)
