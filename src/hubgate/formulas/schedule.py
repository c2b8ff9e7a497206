"""Quartz cron (D39): seven fields, seconds first, ``?`` for "no value", a year last.

``croniter`` evaluates the expression once Quartz's day-of-week numbers (1 = Sunday ... 7 =
Saturday) are moved to cron's (0 = Sunday); names (``MON``) mean the same in both.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from croniter import croniter

from hubgate.kit.errors import bad_request

_NUMBER = re.compile(r"(?<![#/\d])(\d+)")
# Enough consecutive fire times to see the shortest gap of any expression within a year.
_GAPS_CHECKED = 400


def _day_of_week(field: str) -> str:
    return _NUMBER.sub(lambda m: str(int(m.group(1)) - 1), field)


def to_croniter(expression: str) -> str:
    fields = expression.split()
    if len(fields) not in (6, 7):
        raise bad_request(
            f"Invalid cron {expression!r}: Quartz cron has 7 fields "
            "(seconds minutes hours day-of-month month day-of-week year)"
        )
    if len(fields) == 6:
        fields.append("*")
    fields[5] = _day_of_week(fields[5])
    return " ".join("*" if f == "?" else f for f in fields)


def _iterator(expression: str, start: datetime) -> croniter:
    translated = to_croniter(expression)
    try:
        return croniter(translated, start, second_at_beginning=True)
    except (ValueError, KeyError) as error:
        raise bad_request(f"Invalid cron {expression!r}: {error}") from None


def check(expression: str, min_interval: timedelta) -> None:
    """400 for a cron that does not parse or fires more often than ``min_interval``."""
    times = _iterator(expression, datetime(2026, 1, 1, tzinfo=UTC))
    try:
        previous = times.get_next(datetime)
        for _ in range(_GAPS_CHECKED):
            current = times.get_next(datetime)
            if current - previous < min_interval:
                minutes = min_interval.total_seconds() / 60
                raise bad_request(
                    f"Invalid cron {expression!r}: it fires more often than every "
                    f"{minutes:g} minutes (HUBGATE_FORMULA_MIN_INTERVAL)"
                )
            previous = current
    except (ValueError, KeyError, StopIteration) as error:
        raise bad_request(f"Invalid cron {expression!r}: {error}") from None


def next_fire(expression: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after``."""
    fire: datetime = _iterator(expression, after).get_next(datetime)
    return fire
