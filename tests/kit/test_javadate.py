"""Java date patterns and poller URL placeholders (D28)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.kit.javadate import fill_template, format_java, parse_zone

MOMENT = datetime(2026, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)  # a Thursday
PLUS_ONE = timezone(timedelta(hours=1))
TWILIO_MESSAGES = "/hubs/messaging/messages?where=DateSent='${date:yyyy-MM-dd'T'HH:mm:ssXXX}'"
TWILIO_ACCOUNTS = (
    "/hubs/messaging/accounts?where=date_updated='${gmtDate:EEE, dd MMM yyyy HH:mm:ss Z}'"
)


# --------------------------------------------------------------------------------- format_java


@pytest.mark.parametrize(
    ("pattern", "moment", "expected"),
    [
        ("yyyy-MM-dd'T'HH:mm:ssXXX", MOMENT, "2026-03-05T07:08:09Z"),
        ("yyyy-MM-dd'T'HH:mm:ssXXX", MOMENT.astimezone(PLUS_ONE), "2026-03-05T08:08:09+01:00"),
        ("EEE, dd MMM yyyy HH:mm:ss Z", MOMENT, "Thu, 05 Mar 2026 07:08:09 +0000"),
        ("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", MOMENT, "2026-03-05T07:08:09.123Z"),
        ("y yy yyy yyyy yyyyy", MOMENT, "2026 26 2026 2026 02026"),
        ("M MM MMM MMMM", MOMENT, "3 03 Mar March"),
        ("d dd D DDD", MOMENT, "5 05 64 064"),
        ("H HH h hh k K a", MOMENT, "7 07 7 07 7 7 AM"),
        ("h a k K", MOMENT.replace(hour=0), "12 AM 24 0"),
        ("h a k K", MOMENT.replace(hour=12), "12 PM 12 0"),
        ("hh:mm a", MOMENT.replace(hour=23, minute=59), "11:59 PM"),
        ("m mm s ss", MOMENT, "8 08 9 09"),
        ("S SS SSS SSSSSS SSSSSSSSS", MOMENT, "1 12 123 123456 123456000"),
        ("SSS", MOMENT.replace(microsecond=999999), "999"),  # truncated, never rounded
        ("E EE EEE EEEE", MOMENT, "Thu Thu Thu Thursday"),
        ("z", MOMENT, "UTC"),
        ("z", MOMENT.astimezone(timezone(timedelta(0), "GMT")), "GMT"),
        ("z", MOMENT.astimezone(PLUS_ONE), "GMT+01:00"),
        ("z", MOMENT.astimezone(ZoneInfo("America/Denver")), "MST"),
        ("z", datetime(2026, 7, 1, tzinfo=ZoneInfo("America/Denver")), "MDT"),
        ("z", MOMENT.astimezone(ZoneInfo("America/Sao_Paulo")), "GMT-03:00"),  # tzdata "-03"
        ("Z ZZZZ ZZZZZ", MOMENT, "+0000 GMT Z"),
        ("Z ZZZZ ZZZZZ", MOMENT.astimezone(PLUS_ONE), "+0100 GMT+01:00 +01:00"),
        ("X XX XXX", MOMENT, "Z Z Z"),
        ("X XX XXX", MOMENT.astimezone(ZoneInfo("America/Denver")), "-07 -0700 -07:00"),
        ("X XX XXX", MOMENT.astimezone(ZoneInfo("Asia/Kolkata")), "+0530 +0530 +05:30"),
        ("XXXX XXXXX", MOMENT.astimezone(ZoneInfo("Asia/Kolkata")), "+0530 +05:30"),
        ("'T'", MOMENT, "T"),
        ("''", MOMENT, "'"),
        ("hh 'o''clock' a", MOMENT, "07 o'clock AM"),
        ("'yyyy' yyyy", MOMENT, "yyyy 2026"),
        ("'it''s' '' ''''", MOMENT, "it's ' ''"),  # outside quotes, each '' is one quote
        ("yyyy/MM/dd - HH.mm,ss [€]", MOMENT, "2026/03/05 - 07.08,09 [€]"),
        ("", MOMENT, ""),
        ("yyyyMMddHHmmss", MOMENT, "20260305070809"),
        ("EEEE d MMMM", datetime(2026, 1, 4, tzinfo=UTC), "Sunday 4 January"),
        ("D", datetime(2024, 12, 31, tzinfo=UTC), "366"),
        ("yyyy", datetime(33, 1, 1, tzinfo=UTC), "0033"),
    ],
)
def test_format_java(pattern: str, moment: datetime, expected: str) -> None:
    assert format_java(pattern, moment) == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("YYYY-MM-dd", "week-based year"),
        ("uuuu", "ambiguous"),
        ("yyyy-MM-dd HH:mm:ss.SSS Q", "unsupported pattern letter 'Q'"),
        ("yyyy 'T", "unterminated quote"),
        ("'", "unterminated quote"),
        ("SSSSSSSSSS", "too many pattern letters"),
        ("XXXXXX", "too many pattern letters"),
        ("w", "unsupported"),
        ("G", "unsupported"),
    ],
)
def test_format_java_errors(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        format_java(pattern, MOMENT)


def test_format_java_needs_an_aware_moment() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_java("yyyy", datetime(2026, 1, 1))  # naive on purpose


@settings(max_examples=100, deadline=None)
@given(st.datetimes(timezones=st.just(UTC)))
def test_iso_pattern_agrees_with_isoformat(moment: datetime) -> None:
    # A cross-check against the standard library over the whole datetime range.
    expected = moment.replace(tzinfo=None).isoformat(timespec="microseconds")
    assert format_java("yyyy-MM-dd'T'HH:mm:ss.SSSSSS", moment) == expected
    assert format_java("EEE, dd MMM yyyy HH:mm:ss Z", moment) == format_datetime(moment)


# --------------------------------------------------------------------------------- zones


def test_parse_zone() -> None:
    assert parse_zone("America/Denver") == ZoneInfo("America/Denver")
    assert parse_zone("UTC") is UTC
    assert parse_zone("GMT").utcoffset(None) == timedelta(0)
    assert parse_zone("GMT+5").utcoffset(None) == timedelta(hours=5)
    assert parse_zone("UTC-0330").utcoffset(None) == -timedelta(hours=3, minutes=30)
    assert parse_zone("+01").utcoffset(None) == timedelta(hours=1)
    for bad in ("Mars/Base", "", "../etc/passwd", "/etc/localtime", "GMT+99", "a\0b", "GMT+1:00"):
        with pytest.raises(ValueError, match="unknown time zone"):
            parse_zone(bad)


# --------------------------------------------------------------------------------- fill_template


def test_twilio_default_poller_url() -> None:
    assert fill_template(TWILIO_MESSAGES, MOMENT) == (
        "/hubs/messaging/messages?where=DateSent='2026-03-05T07:08:09Z'"
    )


def test_twilio_accounts_poller_url() -> None:
    assert fill_template(TWILIO_ACCOUNTS, MOMENT) == (
        "/hubs/messaging/accounts?where=date_updated='Thu, 05 Mar 2026 07:08:09 +0000'"
    )


def test_date_uses_the_server_zone_and_gmt_date_uses_gmt() -> None:
    template = "${date:HH:mm z XXX} ${gmtDate:HH:mm z XXX}"
    assert fill_template(template, MOMENT) == "07:08 UTC Z 07:08 GMT Z"
    assert fill_template(template, MOMENT, server_zone=PLUS_ONE) == (
        "08:08 GMT+01:00 +01:00 07:08 GMT Z"
    )
    # The moment's own zone does not matter, only the placeholder's.
    assert fill_template(template, MOMENT.astimezone(PLUS_ONE)) == "07:08 UTC Z 07:08 GMT Z"


def test_date_time_zone() -> None:
    template = "${dateTimeZone:America/Denver:yyyy-MM-dd'T'HH:mm:ss.SSS'Z'}"
    assert fill_template(template, MOMENT) == "2026-03-05T00:08:09.123Z"
    summer = datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert fill_template("${dateTimeZone:America/Denver:HH z XXX}", summer) == "06 MDT -06:00"
    assert fill_template("${dateTimeZone:GMT+5:HH}", MOMENT) == "12"


def test_epochs() -> None:
    template = "a=${epoch}&s=${epoch:s}&ms=${epoch:ms}&us=${epoch:us}"
    assert fill_template(template, MOMENT) == (
        "a=1772694489123&s=1772694489&ms=1772694489123&us=1772694489123456"
    )
    before = datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)
    assert fill_template("${epoch:s} ${epoch} ${epoch:us}", before) == "-1 -500 -500000"


def test_text_around_and_between_placeholders_is_kept() -> None:
    template = "/x?where=a>'${epoch:s}' AND b<'${gmtDate:yyyy}'&cost=$5&brace=}{&q=$"
    assert fill_template(template, MOMENT) == (
        "/x?where=a>'1772694489' AND b<'2026'&cost=$5&brace=}{&q=$"
    )
    assert fill_template("", MOMENT) == ""
    assert fill_template("no placeholders", MOMENT) == "no placeholders"


def test_patterns_may_quote_braces_and_colons() -> None:
    assert fill_template("${date:'{'yyyy'}'}", MOMENT) == "{2026}"
    assert fill_template("${date:HH:mm:ss}", MOMENT) == "07:08:09"
    assert fill_template("${date:'${'yyyy}", MOMENT) == "${2026"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${date}", r"needs a pattern"),
        ("${gmtDate}", r"needs a pattern"),
        ("${date:}", r"empty date pattern"),
        ("${now}", r"unknown placeholder '\$\{now...\}' at position 0"),
        ("x${Date:yyyy}", r"unknown placeholder '\$\{Date...\}' at position 1"),
        ("${}", r"invalid placeholder"),
        ("${ date:yyyy}", r"invalid placeholder"),
        ("${date-x}", r"invalid placeholder"),
        ("${", r"unterminated placeholder at position 0"),
        ("a ${date:yyyy", r"unterminated placeholder at position 2"),
        ("${date:'yyyy}", r"unterminated placeholder"),
        ("${epoch", r"unterminated placeholder"),
        ("${epoch:s", r"unterminated placeholder"),
        ("${epoch:ns}", r"unknown epoch unit 'ns'"),
        ("${epoch:}", r"unknown epoch unit ''"),
        ("${date:yyyy${epoch}}", r"'\$\{' inside the placeholder at position 0"),
        ("${date:${epoch}}", r"'\$\{' inside the placeholder"),
        ("${${epoch}}", r"invalid placeholder"),
        ("${date:YYYY}", r"at position 0: unsupported pattern letter 'Y'"),
        ("${dateTimeZone:yyyy}", r"needs a zone and a pattern"),
        ("${dateTimeZone}", r"needs a zone and a pattern"),
        ("${dateTimeZone:America/Denver} ${date:HH:mm}", r"needs a zone and a pattern"),
        ("${dateTimeZone:Mars/Base:yyyy}", r"position 0: unknown time zone 'Mars/Base'"),
        ("${dateTimeZone::yyyy}", r"unknown time zone ''"),
    ],
)
def test_fill_template_errors(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fill_template(template, MOMENT)


def test_fill_template_needs_an_aware_moment() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        fill_template("${epoch}", datetime(2026, 1, 1))  # naive on purpose


def test_fill_template_length_limit() -> None:
    with pytest.raises(ValueError, match="too long"):
        fill_template("x" * 10_001, MOMENT)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="${}:'abyMdHXz/ -T", max_size=30))
def test_fill_template_raises_only_value_error(template: str) -> None:
    try:
        result = fill_template(template, MOMENT)
    except ValueError:
        return
    if "${" not in template:
        assert result == template
