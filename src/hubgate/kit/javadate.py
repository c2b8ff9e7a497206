"""Java date patterns and the poller's URL placeholders (D28).

Open Connectors poller URLs carry placeholders filled from the last poll time, e.g. Twilio's
``/hubs/messaging/messages?where=DateSent='${date:yyyy-MM-dd'T'HH:mm:ssXXX}'``. The patterns are
Java ``SimpleDateFormat``/``DateTimeFormatter`` patterns; ``format_java`` implements the common
subset with English names whatever the process locale.

Pattern letters (a run of the same letter is one field; its length picks the form):

========  =====================================================================================
``y``     year; ``yy`` two digits, otherwise zero-padded to the run length (``yyyy`` 2026)
``M``     month; ``M`` 3, ``MM`` 03, ``MMM`` Mar, ``MMMM`` March
``d``     day of month, zero-padded to the run length (so are ``H h k K m s D``)
``H h``   hour 0-23 / 1-12;  ``k K``: 1-24 / 0-11
``m s``   minute, second
``S``     fraction of a second, as many digits as letters (``SSS`` milliseconds), at most 9
``a``     AM / PM
``E``     day of week; up to 3 letters Thu, 4 or more Thursday
``D``     day of year
``z``     zone short name: UTC, GMT, MST...; a zone without a name gives ``GMT+01:00``
``Z``     ``+0000``; ``ZZZZ`` ``GMT+01:00`` (``GMT`` at zero); ``ZZZZZ`` ``+01:00`` or ``Z``
``X``     ISO offset, ``Z`` at zero: ``X`` +01 (+0530 if minutes), ``XX`` +0100, ``XXX`` +01:00
========  =====================================================================================

``'text'`` is literal text and ``''`` one quote (inside quotes too); any other non-letter is
copied. Other letters raise ``ValueError`` rather than guess: notably ``Y`` (week-based year,
almost always a typo for ``y`` that would be wrong around New Year) and ``u`` (day-of-week in
SimpleDateFormat but year in DateTimeFormatter).

Placeholders (``fill_template``): ``${date:PATTERN}`` in the server zone (UTC),
``${gmtDate:PATTERN}`` in GMT, ``${dateTimeZone:ZONE:PATTERN}`` in an IANA zone
(``America/Denver``) or a fixed ``UTC``/``GMT``/``GMT+5``/``+0100`` offset, ``${epoch}`` and
``${epoch:ms}`` milliseconds, ``${epoch:s}`` seconds, ``${epoch:us}`` microseconds. A pattern
ends at the first ``}`` outside a quoted literal, so patterns may hold quotes and colons. The
values are not URL-encoded here; the caller decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["fill_template", "format_java", "parse_zone"]

_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Letters whose value is just a zero-padded number.
_NUMERIC: Final = frozenset("dHhkKmsD")
_SUPPORTED: Final = frozenset("yMdHhkKmsSaEDzZX")
_HINTS: Final = {
    "Y": " (week-based year; use 'y' for the calendar year)",
    "u": " (ambiguous between SimpleDateFormat and DateTimeFormatter)",
}
# ``z`` prints GMT for ${gmtDate:...}, as Java's GMT zone does.
_GMT: Final = timezone(timedelta(0), "GMT")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Template text beyond this is refused; URLs are far shorter, and every pattern is compiled.
_MAX_TEMPLATE: Final = 10_000


@dataclass(frozen=True, slots=True)
class _Field:
    letter: str
    count: int


@lru_cache(maxsize=256)  # a poller formats the same few patterns on every run
def _compile(pattern: str) -> tuple[str | _Field, ...]:
    parts: list[str | _Field] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            if pattern.startswith("''", i):
                parts.append("'")
                i += 2
                continue
            text: list[str] = []
            j = i + 1
            while True:
                end = pattern.find("'", j)
                if end < 0:
                    raise ValueError(f"unterminated quote at position {i} in pattern {pattern!r}")
                text.append(pattern[j:end])
                if pattern.startswith("''", end):  # an escaped quote inside quoted text
                    text.append("'")
                    j = end + 2
                    continue
                break
            parts.append("".join(text))
            i = end + 1
        elif c.isascii() and c.isalpha():
            j = i
            while j < n and pattern[j] == c:
                j += 1
            if c not in _SUPPORTED:
                hint = _HINTS.get(c, "")
                raise ValueError(f"unsupported pattern letter {c!r}{hint} in {pattern!r}")
            count = j - i
            if (c == "S" and count > 9) or (c in "ZX" and count > 5) or count > 20:
                raise ValueError(f"too many pattern letters {c * count!r} in {pattern!r}")
            parts.append(_Field(c, count))
            i = j
        else:
            parts.append(c)
            i += 1
    return tuple(parts)


def _offset_text(offset: timedelta, *, colon: bool, minutes: str) -> str:
    """``+HH[:]MM``; ``minutes`` is "always", "if-nonzero", or "with-seconds" (adds :SS if any)."""
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hours, rest = divmod(total, 3600)
    mins, secs = divmod(rest, 60)
    sep = ":" if colon else ""
    text = f"{sign}{hours:02d}"
    if minutes == "always" or mins or secs or minutes == "with-seconds":
        text += f"{sep}{mins:02d}"
    if minutes == "with-seconds" and secs:
        text += f"{sep}{secs:02d}"
    return text


def _zone_name(moment: datetime, offset: timedelta) -> str:
    name = moment.tzname()
    # Fixed-offset zones call themselves "UTC+01:00", and tzdata names some zones "+0530" or
    # "-03"; Java prints those as "GMT+05:30".
    if not name or name[0] in "+-" or (name.startswith("UTC") and len(name) > 3):
        if not offset:
            return "GMT"
        return "GMT" + _offset_text(offset, colon=True, minutes="always")
    return name


def _render(field: _Field, moment: datetime, offset: timedelta) -> str:
    letter, count = field.letter, field.count
    if letter in _NUMERIC:
        value = {
            "d": moment.day,
            "H": moment.hour,
            "h": moment.hour % 12 or 12,
            "k": moment.hour or 24,
            "K": moment.hour % 12,
            "m": moment.minute,
            "s": moment.second,
            "D": moment.timetuple().tm_yday,
        }[letter]
        return f"{value:0{count}d}"
    if letter == "y":
        return f"{moment.year % 100:02d}" if count == 2 else f"{moment.year:0{count}d}"
    if letter == "M":
        if count >= 4:
            return _MONTHS[moment.month - 1]
        if count == 3:
            return _MONTHS[moment.month - 1][:3]
        return f"{moment.month:0{count}d}"
    if letter == "S":
        return f"{moment.microsecond:06d}000"[:count]  # truncated, never rounded up
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "E":
        name = _WEEKDAYS[moment.weekday()]
        return name if count >= 4 else name[:3]
    if letter == "z":
        return _zone_name(moment, offset)
    if letter == "Z":
        if count == 4:
            return "GMT" + _offset_text(offset, colon=True, minutes="always") if offset else "GMT"
        if count == 5:
            return _offset_text(offset, colon=True, minutes="with-seconds") if offset else "Z"
        return _offset_text(offset, colon=False, minutes="always")
    # X: ISO 8601 offsets, "Z" for zero.
    if not offset:
        return "Z"
    if count == 1:
        return _offset_text(offset, colon=False, minutes="if-nonzero")
    if count in (2, 3):
        return _offset_text(offset, colon=count == 3, minutes="always")
    return _offset_text(offset, colon=count == 5, minutes="with-seconds")


def format_java(pattern: str, moment: datetime) -> str:
    """Format an aware ``moment`` (in its own zone) with a Java date pattern."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("format_java needs a timezone-aware datetime")
    out: list[str] = []
    for part in _compile(pattern):
        out.append(part if isinstance(part, str) else _render(part, moment, offset))
    return "".join(out)


def _fixed_offset(text: str) -> timezone | None:
    """``+5``, ``+05``, ``+0530``, ``-11``: a fixed offset (Java's GMT±H[H][MM])."""
    if len(text) < 2 or text[0] not in "+-" or not text[1:].isascii() or not text[1:].isdigit():
        return None
    digits = text[1:]
    if len(digits) in (1, 2):
        hours, minutes = int(digits), 0
    elif len(digits) == 4:
        hours, minutes = int(digits[:2]), int(digits[2:])
    else:
        return None
    if hours > 18 or minutes >= 60:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def parse_zone(name: str) -> tzinfo:
    """A ``dateTimeZone`` zone: an IANA name, ``UTC``/``GMT``/``Z``, or ``GMT+5``-style offset."""
    if name in ("UTC", "Z"):
        return UTC
    if name == "GMT":
        return _GMT
    for prefix in ("GMT", "UTC", ""):
        if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1] in ("+", "-"):
            fixed = _fixed_offset(name[len(prefix) :])
            if fixed is None:
                break
            return fixed
    try:
        return ZoneInfo(name)
    # Not found is a KeyError; malformed keys ("../x", NUL) are ValueError; a directory or an
    # unreadable file under the zoneinfo path is an OSError.
    except (KeyError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}") from None


_PLACEHOLDER_HELP: Final = (
    "expected ${date:PATTERN}, ${gmtDate:PATTERN}, ${dateTimeZone:ZONE:PATTERN}, "
    "${epoch}, ${epoch:s}, ${epoch:ms} or ${epoch:us}"
)


def _pattern_end(template: str, start: int, placeholder: int) -> int:
    """Index of the ``}`` closing a pattern that starts at ``start`` (quotes respected)."""
    quoted = False
    i = start
    while i < len(template):
        c = template[i]
        if c == "'":
            quoted = not quoted  # '' toggles twice, which is right for an escaped quote
        elif not quoted and c == "}":
            return i
        elif not quoted and template.startswith("${", i):
            raise ValueError(f"'${{' inside the placeholder at position {placeholder}")
        i += 1
    raise ValueError(f"unterminated placeholder at position {placeholder}")


def _epoch(moment: datetime, unit: str) -> str:
    # Integer arithmetic: float timestamps lose microseconds for dates far from 1970.
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return str(micros // {"s": 1_000_000, "ms": 1_000, "us": 1}[unit])


def _fill_one(template: str, at: int, last_poll: datetime, server_zone: tzinfo) -> tuple[str, int]:
    """Replace the placeholder whose ``${`` is at ``at``: (its text, index after its ``}``)."""
    i = at + 2
    while i < len(template) and template[i].isascii() and template[i].isalpha():
        i += 1
    name = template[at + 2 : i]
    terminator = template[i : i + 1]
    if not name or terminator not in (":", "}"):
        if terminator == "":
            raise ValueError(f"unterminated placeholder at position {at}")
        shown = template[at : i + 1]
        raise ValueError(f"invalid placeholder {shown!r} at position {at}; {_PLACEHOLDER_HELP}")
    if name == "epoch":
        if terminator == "}":
            return _epoch(last_poll, "ms"), i + 1
        end = template.find("}", i + 1)
        unit = template[i + 1 : end] if end >= 0 else ""
        if unit not in ("s", "ms", "us"):
            if end < 0:
                raise ValueError(f"unterminated placeholder at position {at}")
            raise ValueError(f"unknown epoch unit {unit!r} at position {at}; use s, ms or us")
        return _epoch(last_poll, unit), end + 1
    zone: tzinfo
    if name in ("date", "gmtDate"):
        zone = server_zone if name == "date" else _GMT
        start = i + 1
    elif name == "dateTimeZone":
        zone_end = template.find(":", i + 1) if terminator == ":" else -1
        closing = template.find("}", i + 1)
        if zone_end < 0 or (0 <= closing < zone_end):
            raise ValueError(
                f"${{dateTimeZone:...}} at position {at} needs a zone and a pattern "
                "(${dateTimeZone:ZONE:PATTERN})"
            )
        try:
            zone = parse_zone(template[i + 1 : zone_end])
        except ValueError as error:
            raise ValueError(f"in the placeholder at position {at}: {error}") from None
        start = zone_end + 1
    else:
        raise ValueError(
            f"unknown placeholder '${{{name}...}}' at position {at}; {_PLACEHOLDER_HELP}"
        )
    if terminator != ":":
        raise ValueError(f"${{{name}}} at position {at} needs a pattern: ${{{name}:PATTERN}}")
    end = _pattern_end(template, start, at)
    pattern = template[start:end]
    if not pattern:
        raise ValueError(f"empty date pattern in the placeholder at position {at}")
    try:
        text = format_java(pattern, last_poll.astimezone(zone))
    except ValueError as error:
        raise ValueError(f"in the placeholder at position {at}: {error}") from None
    return text, end + 1


def fill_template(template: str, last_poll: datetime, *, server_zone: tzinfo = UTC) -> str:
    """Replace every ``${...}`` placeholder of a poller URL with ``last_poll``'s values.

    ``last_poll`` must be timezone-aware. Any malformed or unknown placeholder raises
    ``ValueError`` naming its position; a ``$`` not followed by ``{`` is plain text.
    """
    if last_poll.utcoffset() is None:
        raise ValueError("fill_template needs a timezone-aware datetime")
    if len(template) > _MAX_TEMPLATE:
        raise ValueError(f"template is too long (more than {_MAX_TEMPLATE} characters)")
    out: list[str] = []
    i = 0
    while True:
        at = template.find("${", i)
        if at < 0:
            out.append(template[i:])
            return "".join(out)
        out.append(template[i:at])
        text, i = _fill_one(template, at, last_poll, server_zone)
        out.append(text)
