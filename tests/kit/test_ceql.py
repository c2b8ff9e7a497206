"""CEQL: parsing (spec examples, errors with positions), rendering, evaluation semantics,
ordering, field selection and push-down planning."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from hubgate.kit.ceql import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    CeqlSyntaxError,
    Comparison,
    Expr,
    In,
    IsNull,
    Like,
    Not,
    Or,
    OrderKey,
    Plan,
    PushableField,
    evaluate,
    parse,
    parse_fields,
    parse_order_by,
    plan,
    project,
    resolve_field,
    sort_records,
    to_ceql,
)

C = Comparison


# --------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Examples from the Open Connectors documentation (spec 4.4).
        ("Name='Edge Communications'", C("Name", "=", "Edge Communications")),
        (
            "LastModifiedDate>'2018-01-15T00:00:00.000Z'",
            C("LastModifiedDate", ">", "2018-01-15T00:00:00.000Z"),
        ),
        ("AnnualRevenue >= 100000", C("AnnualRevenue", ">=", 100000)),
        ("`metaData.lastUpdateTime` > 5", C("metaData.lastUpdateTime", ">", 5)),
        ("objectName in ('a','b')", In("objectName", ("a", "b"))),
        ("'Modified Time'>'2020-01-01'", C("Modified Time", ">", "2020-01-01")),
        (
            "to='+15558675310' AND DateSent>='2026-01-01'",
            And((C("to", "=", "+15558675310"), C("DateSent", ">=", "2026-01-01"))),
        ),
        ("body LIKE '%hi%'", Like("body", "%hi%")),
        ("x IS NOT NULL", IsNull("x", negated=True)),
        ("x is null", IsNull("x")),
        ("NOT (a = 1 OR b = 2)", Not(Or((C("a", "=", 1), C("b", "=", 2))))),
        ("name='O''Brien'", C("name", "=", "O'Brien")),
        ("name=''''", C("name", "=", "'")),
        ("name=''", C("name", "=", "")),
        # Every operator, with and without whitespace; <> is !=.
        ("a=1", C("a", "=", 1)),
        ("a != 1", C("a", "!=", 1)),
        ("a<>1", C("a", "!=", 1)),
        ("a<1", C("a", "<", 1)),
        ("a>1", C("a", ">", 1)),
        ("a<=1", C("a", "<=", 1)),
        ("a>=-1", C("a", ">=", -1)),
        # Values.
        ("price = -0.0075", C("price", "=", Decimal("-0.0075"))),
        ("price = 1.50", C("price", "=", Decimal("1.50"))),
        ("flag = TRUE", C("flag", "=", True)),
        ("flag=false", C("flag", "=", False)),
        ("body = 'caf\u00e9 \u2603 \\n'", C("body", "=", "caf\u00e9 \u2603 \\n")),
        ("body = 'a AND b'", C("body", "=", "a AND b")),
        # Identifiers.
        ("_x.y_2.3 = 1", C("_x.y_2.3", "=", 1)),
        ("`weird name!` = 1", C("weird name!", "=", 1)),
        ("`and` = 1", C("and", "=", 1)),
        ("`caf\u00e9` = 1", C("caf\u00e9", "=", 1)),
        ("from = '+1'", C("from", "=", "+1")),
        # NOT LIKE / NOT IN / precedence.
        ("body NOT LIKE 'x%'", Like("body", "x%", negated=True)),
        ("n not in (1, 2.5, 'x', true)", In("n", (1, Decimal("2.5"), "x", True), negated=True)),
        ("NOT a = 1", Not(C("a", "=", 1))),
        ("not not a = 1", Not(Not(C("a", "=", 1)))),
        (
            "a=1 OR b=2 AND c=3",
            Or((C("a", "=", 1), And((C("b", "=", 2), C("c", "=", 3))))),
        ),
        (
            "NOT a=1 AND b=2",
            And((Not(C("a", "=", 1)), C("b", "=", 2))),
        ),
        ("((a=1))", C("a", "=", 1)),
        (
            "(a=1 AND b=2) AND c=3",
            And((And((C("a", "=", 1), C("b", "=", 2))), C("c", "=", 3))),
        ),
        (
            "a=1 and b=2 AND c=3",
            And((C("a", "=", 1), C("b", "=", 2), C("c", "=", 3))),
        ),
        ("x IN('a')AND(y=1)", And((In("x", ("a",)), C("y", "=", 1)))),
        ("  \t a\n=\n1  ", C("a", "=", 1)),
    ],
)
def test_parse(text: str, expected: Expr) -> None:
    assert parse(text) == expected
    # Every parse also survives rendering.
    assert parse(to_ceql(parse(text))) == expected


def test_number_types_are_exact() -> None:
    integer = parse("a = 100000")
    decimal = parse("a = 0.1")
    assert isinstance(integer, Comparison)
    assert isinstance(decimal, Comparison)
    assert type(integer.value) is int
    assert decimal.value == Decimal("0.1")
    boolean = parse("a = true")
    assert isinstance(boolean, Comparison)
    assert boolean.value is True


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("to=", 3, "expected a value"),
        ("to = ", 5, "expected a value"),
        ("name='unterminated", 5, "unterminated string"),
        ("name='it''s", 5, "unterminated string"),
        ("`field = 1", 0, "unterminated backticked field name"),
        ("`` = 1", 0, "empty field name"),
        ("'' = 1", 0, "empty field name"),
        ("a == 1", 2, "unknown operator '=='"),
        ("a => 1", 2, "unknown operator '=>'"),
        ("a ~ 1", 2, "unexpected character '~'"),
        ('a = "x"', 4, "single quotes"),
        ("a foo 1", 2, "expected an operator"),
        ("a", 1, "expected an operator"),
        ("a=1 b=2", 4, "expected AND, OR or the end, found 'b'"),
        ("a=1 'x'", 4, "expected AND, OR or the end"),
        ("a=1)", 3, "without a matching '('"),
        ("(a=1", 4, "expected ')'"),
        ("(a=1 b=2)", 5, "expected ')'"),
        ("", 0, "expected a condition"),
        ("   ", 3, "expected a condition"),
        ("()", 1, "expected a field name"),
        ("a = 1 AND", 9, "expected a field name"),
        ("AND a = 1", 0, "keyword 'AND'"),
        ("null = 1", 0, "keyword 'null'"),
        ("1a = 1", 0, "invalid field name"),
        ("a..b = 1", 0, "invalid field name"),
        ("a. = 1", 0, "invalid field name"),
        ("-1 = 1", 0, "invalid field name"),
        ("a = b", 4, "expected a value, found 'b'"),
        ("a = null", 4, "use IS NULL"),
        ("a = 1.", 4, "invalid number '1.'"),
        ("a = 1.2.3", 4, "invalid number"),
        ("a = 12abc", 4, "invalid number"),
        ("a = -x", 4, "unexpected character '-'"),
        ("a = `b`", 4, "expected a value"),
        ("a IS 1", 5, "expected NULL or NOT NULL after IS"),
        ("a IS NOT 1", 9, "expected NULL after IS"),
        ("a NOT = 1", 6, "expected LIKE or IN after NOT"),
        ("a LIKE 5", 7, "expected a quoted pattern after LIKE"),
        ("a IN 1", 5, "expected '(' after IN"),
        ("a IN ()", 6, "expected a value"),
        ("a IN (1 2)", 8, "expected ',' or ')'"),
        ("a IN (1,", 8, "expected a value"),
        ("NOT", 3, "expected a field name"),
    ],
)
def test_syntax_errors(text: str, position: int, reason: str) -> None:
    with pytest.raises(CeqlSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert error.position == position
    assert reason in error.reason
    assert str(error).startswith(f"Invalid where clause at position {position}: ")
    assert isinstance(error, ValueError)


def test_error_message_format_matches_the_api() -> None:
    with pytest.raises(CeqlSyntaxError, match=r"^Invalid where clause at position 3: expected"):
        parse("to=")


def test_error_survives_pickling() -> None:
    with pytest.raises(CeqlSyntaxError) as caught:
        parse("to=")
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own object
    assert (copy.position, copy.reason, str(copy)) == (3, "expected a value", str(caught.value))


def test_long_tokens_are_shortened_in_messages() -> None:
    with pytest.raises(CeqlSyntaxError) as caught:
        parse("a=1 " + "b" * 500)
    assert len(str(caught.value)) < 120


def test_nesting_limit() -> None:
    deep = "(" * MAX_DEPTH + "a=1" + ")" * MAX_DEPTH
    assert parse(deep) == C("a", "=", 1)
    with pytest.raises(CeqlSyntaxError, match="too deep") as caught:
        parse("(" * (MAX_DEPTH + 1) + "a=1" + ")" * (MAX_DEPTH + 1))
    assert caught.value.position == MAX_DEPTH
    with pytest.raises(CeqlSyntaxError, match="too deep"):
        parse("NOT " * (MAX_DEPTH + 1) + "a=1")
    # Far beyond Python's recursion limit: still a syntax error, found early.
    with pytest.raises(CeqlSyntaxError, match="too deep"):
        parse("(" * 5000)


def test_length_limit() -> None:
    clause = "a='" + "x" * (MAX_LENGTH - 4) + "'"
    assert len(clause) == MAX_LENGTH
    assert parse(clause) == C("a", "=", "x" * (MAX_LENGTH - 4))
    with pytest.raises(CeqlSyntaxError, match="too long") as caught:
        parse(clause + " ")
    assert caught.value.position == MAX_LENGTH


def test_long_flat_conjunction_parses_without_recursion() -> None:
    clause = " AND ".join(["a=1"] * 1000)
    expr = parse(clause)
    assert isinstance(expr, And)
    assert len(expr.items) == 1000
    assert evaluate(expr, {"a": 1})


def test_huge_number_is_a_syntax_error() -> None:
    with pytest.raises(CeqlSyntaxError, match="number is too long"):
        parse("a=" + "9" * 5000)


def test_non_text_input_is_a_syntax_error() -> None:
    with pytest.raises(CeqlSyntaxError):
        parse(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (C("to", "=", "+1555"), "to = '+1555'"),
        (C("a b", "!=", "O'Brien"), "`a b` != 'O''Brien'"),
        (C("NOT", "=", 1), "`NOT` = 1"),
        (C("x", ">", Decimal("1E+3")), "x > 1000.0"),
        (C("x", ">", Decimal("-0.000001")), "x > -0.000001"),
        (C("x", "=", False), "x = false"),
        (Like("b", "%x%", negated=True), "b NOT LIKE '%x%'"),
        (In("n", (1, "a")), "n IN (1, 'a')"),
        (IsNull("n", negated=True), "n IS NOT NULL"),
        (Not(And((C("a", "=", 1), C("b", "=", 2)))), "NOT (a = 1 AND b = 2)"),
        (Not(Not(C("a", "=", 1))), "NOT NOT a = 1"),
        (
            Or((And((C("a", "=", 1), C("b", "=", 2))), Or((C("c", "=", 3), C("d", "=", 4))))),
            "(a = 1 AND b = 2) OR (c = 3 OR d = 4)",
        ),
    ],
)
def test_to_ceql(expr: Expr, text: str) -> None:
    assert to_ceql(expr) == text
    assert parse(text) == expr


@pytest.mark.parametrize(
    "build",
    [
        lambda: C("", "=", 1),
        lambda: C("a`b", "=", 1),
        lambda: C("a", "==", 1),
        lambda: C("a", "<>", 1),
        lambda: C("a", "=", 1.5),  # type: ignore[arg-type]
        lambda: C("a", "=", None),  # type: ignore[arg-type]
        lambda: C("a", "=", Decimal("NaN")),
        lambda: In("a", ()),
        lambda: And((C("a", "=", 1),)),
        lambda: Or(()),
        lambda: And((C("a", "=", 1), "b = 2")),  # type: ignore[arg-type]
        lambda: Not("a = 1"),  # type: ignore[arg-type]
    ],
)
def test_invalid_asts_are_refused(build: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        build()


def test_ast_nodes_are_frozen_and_hashable() -> None:
    expr = parse("a IN (1, 2) AND NOT b LIKE 'x'")
    assert hash(expr) == hash(parse("a IN (1, 2) AND NOT b LIKE 'x'"))
    with pytest.raises(AttributeError):
        expr.items = ()  # type: ignore[misc, union-attr]


# --------------------------------------------------------------------------------- evaluation

TWILIO_MESSAGE: dict[str, Any] = {
    "sid": "SM1",
    "to": "+15558675310",
    "from": "+15017122661",
    "body": "Hi there, Ahoy!",
    "status": "delivered",
    "num_segments": "2",
    "num_media": "0",
    "price": "-0.00750",
    "error_code": None,
    "date_sent": "Fri, 24 May 2019 17:18:27 +0000",
    "date_created": "Fri, 24 May 2019 17:18:26 +0000",
    "subresource_uris": {"media": "/2010-04-01/Accounts/AC1/Messages/SM1/Media.json"},
    "flags": ["outbound"],
}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # Timestamps: Twilio's RFC 2822 against ISO literals, date-only literals as midnight UTC.
        ("DateSent >= '2019-05-24'", True),
        ("DateSent > '2019-05-25'", False),
        ("DateSent < '2019-05-25'", True),
        ("DateSent = '2019-05-24'", False),  # midnight, not "that day"
        ("DateSent = '2019-05-24T17:18:27Z'", True),
        ("DateSent = '2019-05-24T19:18:27+02:00'", True),
        ("DateSent = '2019-05-24T17:18:27.000Z'", True),
        ("DateSent = '2019-05-24 17:18:27'", True),  # no zone: UTC
        ("DateSent > '2019-05-24T17:18:26.999999Z'", True),
        ("DateSent >= 'Fri, 24 May 2019 17:18:27 GMT'", True),
        ("date_sent > date_created", None),  # not a value: see the syntax test
        # Numbers: numeric strings in the record compare as numbers.
        ("num_segments = 2", True),
        ("NumSegments > 10", False),
        ("num_segments >= 1.5", True),
        ("price < 0", True),
        ("price = -0.0075", True),
        ("body > 5", False),  # text is not a number: unknown
        ("body != 5", False),  # ... in either direction
        # Strings compare as strings, case-sensitively.
        ("status = 'delivered'", True),
        ("status = 'Delivered'", False),
        ("status > 'abc'", True),
        ("num_segments > '10'", True),  # a quoted literal compares as text: "2" > "10"
        # Nulls: missing and None are both null; comparisons with null are never true.
        ("error_code IS NULL", True),
        ("error_code IS NOT NULL", False),
        ("missing IS NULL", True),
        ("error_code = 1", False),
        ("error_code != 1", False),
        ("NOT error_code = 1", False),
        ("error_code NOT IN (1, 2)", False),
        ("error_code NOT LIKE '%'", False),
        ("error_code = 1 OR status = 'delivered'", True),
        ("NOT (error_code = 1 AND status = 'queued')", True),  # unknown AND false = false
        ("NOT (error_code = 1 OR status = 'queued')", False),  # unknown OR false = unknown
        # LIKE: case-insensitive, % and _.
        ("body LIKE '%ahoy%'", True),
        ("body LIKE 'hi%'", True),
        ("body LIKE 'Hi'", False),
        ("body LIKE 'H_ there, Ahoy!'", True),
        ("body LIKE 'H_there%'", False),
        ("body NOT LIKE '%xyz%'", True),
        ("num_segments LIKE '2'", True),
        ("subresource_uris LIKE '%'", False),  # a dict has no text
        # IN.
        ("status IN ('queued', 'delivered')", True),
        ("status NOT IN ('queued', 'delivered')", False),
        ("status NOT IN ('queued', 'sent')", True),
        ("num_segments IN (1, 2)", True),
        ("num_segments NOT IN (1, 3)", True),
        ("body NOT IN (1, 3)", False),  # text vs numbers: unknown
        # Field resolution: case, underscores, camelCase, dotted paths.
        ("TO = '+15558675310'", True),
        ("From = '+15017122661'", True),
        ("numMedia = 0", True),
        ("subresourceUris.media LIKE '%Media.json'", True),
        ("`subresource_uris.media` LIKE '%Media.json'", True),
        ("flags.0 = 'outbound'", True),
        ("flags.1 IS NULL", True),
        ("subresource_uris = 'x'", False),  # a dict compares with nothing
    ],
)
def test_evaluate_twilio_message(where: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(CeqlSyntaxError):
            parse(where)
        return
    assert evaluate(parse(where), TWILIO_MESSAGE) is expected


@pytest.mark.parametrize(
    ("record", "where", "expected"),
    [
        ({"ok": True}, "ok = true", True),
        ({"ok": "TRUE"}, "ok = true", True),
        ({"ok": "false"}, "ok = true", False),
        ({"ok": "false"}, "ok != true", True),
        ({"ok": "yes"}, "ok = true", False),
        ({"ok": True}, "ok = 'true'", True),
        ({"ok": True}, "ok = 1", False),  # a boolean is never a number
        ({"n": 1}, "n = true", False),
        ({"n": 3}, "n = '3'", True),
        ({"n": 3}, "n < '10'", True),
        ({"n": 0.1}, "n = 0.1", True),
        ({"n": Decimal("2.50")}, "n = 2.5", True),
        ({"n": float("nan")}, "n = 1 OR n != 1", False),
        ({"n": "1e3"}, "n = 1000", True),
        ({"n": " 42 "}, "n = 42", True),
        ({"n": "0x10"}, "n = 16", False),
        ({"n": "1_000"}, "n = 1000", False),
        ({"when": datetime(2026, 1, 1, 10, tzinfo=UTC)}, "when > '2026-01-01'", True),
        ({"when": datetime(2026, 1, 1, 10)}, "when = '2026-01-01T10:00:00Z'", True),
        ({"when": date(2026, 1, 1)}, "when = '2026-01-01T00:00:00+00:00'", True),
        ({"when": date(2026, 1, 1)}, "when = 'soon'", False),
        ({"when": "2026-02-30"}, "when > '2026-01-01'", True),  # not a date: compared as text
        ({"when": "2026-01-01T10:00:00-05:00"}, "when = '2026-01-01T15:00:00Z'", True),
        ({"when": "2026-01-01T10:00-0500"}, "when = '2026-01-01T15:00:00Z'", True),
        ({"when": "Thu, 1 Jan 2026 10:00:00 EST"}, "when = '2026-01-01T15:00:00Z'", True),
        ({"when": "1 Jan 2026 10:00 +0000"}, "when = '2026-01-01T10:00:00Z'", True),
        ({"s": "Straße"}, "s LIKE 'STRASSE'", False),  # one character is one character
        ({"s": "Straße"}, "s LIKE 'STRA_E'", True),
        ({"s": "100%"}, "s LIKE '100%'", True),
        ({"s": ""}, "s LIKE '%'", True),
        ({"s": ""}, "s LIKE '_'", False),
        ({"s": "abc"}, "s LIKE '%%%c'", True),
        ({"s": "a" * 200 + "b"}, "s LIKE '" + "%a" * 50 + "%c'", False),  # no blow-up
        ({"a": {"b": {"c": 1}}}, "a.b.c = 1", True),
        ({"a.b": {"c": 1}}, "a.b.c = 1", True),
        ({"a": {"b.c": 1}}, "a.b.c = 1", True),
        ({"A": {"B": 1}}, "a.b = 1", True),
        ({"a": [{"b": 1}]}, "a.0.b = 1", True),
        ({"a": "text"}, "a.b IS NULL", True),
    ],
)
def test_evaluate_semantics(record: dict[str, Any], where: str, expected: bool) -> None:
    assert evaluate(parse(where), record) is expected


def test_resolution_prefers_exact_then_case_then_underscores() -> None:
    record = {"date_sent": 1, "DateSent": 2, "datesent": 3}
    assert resolve_field(record, "DateSent") == 2
    assert resolve_field(record, "DATESENT") == 2  # first case-insensitive match in order
    assert resolve_field(record, "date_sent") == 1
    assert resolve_field({"date_sent": 1}, "DateSent") == 1
    assert resolve_field({"friendly_name": "x"}, "friendlyName") == "x"
    assert resolve_field({"a": 1}, "b") is None


def test_custom_resolver() -> None:
    def resolve(record: Any, field: str) -> Any:
        return record["fields"].get(field.upper())

    assert evaluate(parse("name = 'x'"), {"fields": {"NAME": "x"}}, resolve)
    assert not evaluate(parse("name IS NULL"), {"fields": {"NAME": "x"}}, resolve)


# --------------------------------------------------------------------------------- orderBy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("date_sent desc, to asc", (OrderKey("date_sent", True), OrderKey("to", False))),
        ("DateSent DESC", (OrderKey("DateSent", True),)),
        ("name", (OrderKey("name"),)),
        ("`a b` desc,c", (OrderKey("a b", True), OrderKey("c"))),
        ("", ()),
        ("  ", ()),
    ],
)
def test_parse_order_by(text: str, expected: tuple[OrderKey, ...]) -> None:
    assert parse_order_by(text) == expected


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("a desc,", 7, "expected a field name"),
        (",a", 0, "expected a field name"),
        ("a sideways", 2, "expected ASC, DESC, ',' or the end"),
        ("a desc desc", 7, "expected ',' or the end"),
        ("a = 1", 2, "found '='"),
        ("a ~", 2, "unexpected character '~'"),
    ],
)
def test_order_by_errors(text: str, position: int, reason: str) -> None:
    with pytest.raises(CeqlSyntaxError) as caught:
        parse_order_by(text)
    assert caught.value.position == position
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"Invalid orderBy at position {position}")


def test_sort_records() -> None:
    records: list[dict[str, Any]] = [
        {"id": 1, "date_sent": "Fri, 24 May 2019 17:18:27 +0000", "n": "10", "to": "b"},
        {"id": 2, "date_sent": None, "n": "9", "to": "a"},
        {"id": 3, "date_sent": "2019-05-24T09:00:00-09:00", "n": 9.5, "to": "b"},
        {"id": 4, "date_sent": "Thu, 23 May 2019 10:00:00 +0000", "to": "a"},
        {"id": 5, "date_sent": "Fri, 24 May 2019 17:18:27 +0000", "n": "-1", "to": "a"},
    ]

    def ids(keys: str) -> list[int]:
        return [r["id"] for r in sort_records(records, parse_order_by(keys))]

    # 2019-05-24T09:00-09:00 is 18:00 UTC, after 17:18:27.
    assert ids("DateSent") == [4, 1, 5, 3, 2]
    assert ids("DateSent desc") == [3, 1, 5, 4, 2]  # stable among equals, nulls still last
    assert ids("n") == [5, 2, 3, 1, 4]  # numbers as numbers, missing last
    assert ids("n desc") == [1, 3, 2, 5, 4]
    assert ids("to, date_sent desc") == [5, 4, 2, 3, 1]
    assert ids("") == [1, 2, 3, 4, 5]
    assert sort_records([], [OrderKey("x")]) == []


def test_sort_mixed_types_does_not_raise() -> None:
    records: list[dict[str, Any]] = [
        {"v": "text"},
        {"v": {"a": 1}},
        {"v": True},
        {"v": 3},
        {"v": "2026-01-01"},
        {"v": [1]},
        {"v": "1"},
    ]
    ordered = [r["v"] for r in sort_records(records, [OrderKey("v")])]
    assert ordered == ["2026-01-01", "1", 3, True, "text", {"a": 1}, [1]]


# --------------------------------------------------------------------------------- fields


def test_parse_fields() -> None:
    assert parse_fields("sid, to,date_sent") == ("sid", "to", "date_sent")
    assert parse_fields("`odd name`, a.b") == ("odd name", "a.b")
    assert parse_fields("") == ()
    with pytest.raises(CeqlSyntaxError) as caught:
        parse_fields("a,,b")
    assert caught.value.position == 2
    assert str(caught.value).startswith("Invalid fields at position 2")
    with pytest.raises(CeqlSyntaxError):
        parse_fields("a b")


def test_project() -> None:
    record = {
        "sid": "SM1",
        "date_sent": "x",
        "subresource_uris": {"media": "/m", "feedback": "/f"},
        "meta": {"inner": {"a": 1, "b": 2}},
        "flags": [1, 2],
    }
    assert project(record, ["SID", "DateSent"]) == {"sid": "SM1", "date_sent": "x"}
    assert project(record, ["subresourceUris.media"]) == {"subresource_uris": {"media": "/m"}}
    assert project(record, ["meta.inner.a", "meta.inner.b", "nope"]) == {
        "meta": {"inner": {"a": 1, "b": 2}}
    }
    assert project(record, ["meta.inner.a", "meta"]) == {"meta": record["meta"]}
    assert project(record, ["meta", "meta.inner.a"]) == {"meta": record["meta"]}
    assert project(record, ["flags.0"]) == {}  # no list indexing in projections
    assert project(record, []) == record


# --------------------------------------------------------------------------------- planning

TWILIO_PUSHABLE = {
    "to": PushableField("To", frozenset({"="})),
    "from": PushableField("From", frozenset({"="})),
    "datesent": PushableField(
        "DateSent", frozenset({"=", "<", "<=", ">", ">="}), kinds=frozenset({"date"})
    ),
}


def test_plan_nothing() -> None:
    assert plan(None, TWILIO_PUSHABLE) == Plan((), None)


def test_plan_single_comparison() -> None:
    expr = parse("to = '+1555'")
    result = plan(expr, TWILIO_PUSHABLE)
    assert result.pushed == (expr,)
    assert result.vendor == (C("To", "=", "+1555"),)
    assert result.residual == expr  # the vendor only pre-filters


def test_plan_conjunction_pushes_what_the_vendor_supports() -> None:
    expr = parse(
        "To='+1555' AND date_sent>='2026-01-01' AND DATESENT<'2026-02-01' AND status='sent' "
        "AND from LIKE '+1%' AND to != '+2' AND datesent>='2026-01-05'"
    )
    result = plan(expr, TWILIO_PUSHABLE)
    assert result.pushed == (
        C("To", "=", "+1555"),
        C("date_sent", ">=", "2026-01-01"),
        C("DATESENT", "<", "2026-02-01"),
    )
    assert result.vendor == (
        C("To", "=", "+1555"),
        C("DateSent", ">=", "2026-01-01"),
        C("DateSent", "<", "2026-02-01"),
    )
    assert result.residual is expr


@pytest.mark.parametrize(
    "where",
    [
        "to = '+1' OR from = '+2'",
        "NOT to = '+1'",
        "(to = '+1' OR status = 'x') AND body LIKE '%'",
        "to IN ('+1', '+2')",
        "to IS NULL",
        "to > '+1'",
        "sid = 'SM1'",
        "to = 15558675310",  # compares numerically here, as text at Twilio
        "DateSent >= 'yesterday'",  # not a timestamp: Twilio could not read it
        "DateSent >= 20260101",
    ],
)
def test_plan_pushes_nothing_outside_top_level_supported_comparisons(where: str) -> None:
    expr = parse(where)
    assert plan(expr, TWILIO_PUSHABLE) == Plan((), expr)


def test_plan_nested_and_is_not_flattened_into_the_top_level() -> None:
    # Pushing from a nested AND would be sound too, but the rule is top-level only.
    expr = parse("(to = '+1' AND from = '+2') AND status = 'x'")
    assert plan(expr, TWILIO_PUSHABLE).pushed == ()


def test_plan_exact_fields_leave_the_residual() -> None:
    pushable = {
        "to": PushableField("To", frozenset({"="}), exact=True),
        "datesent": PushableField("DateSent", frozenset({">="})),
    }
    expr = parse("to = '+1' AND DateSent >= '2026-01-01' AND status = 'sent'")
    result = plan(expr, pushable)
    assert result.pushed == (C("to", "=", "+1"), C("DateSent", ">=", "2026-01-01"))
    assert result.residual == And((C("DateSent", ">=", "2026-01-01"), C("status", "=", "sent")))

    only = C("to", "=", "+1")
    assert plan(only, pushable) == Plan((only,), None, (C("To", "=", "+1"),))
    two = parse("to = '+1' AND status = 'sent'")
    assert plan(two, pushable).residual == C("status", "=", "sent")
    # A second predicate for the same parameter and operator is not pushed, so it stays.
    twice = parse("to = '+1' AND to = '+2'")
    assert plan(twice, pushable).residual == C("to", "=", "+2")


def test_plan_literal_kinds() -> None:
    pushable = {
        "n": PushableField("N", frozenset({"=", ">"}), kinds=frozenset({"number"})),
        "b": PushableField("B", frozenset({"="}), kinds=frozenset({"boolean", "string"})),
    }
    expr = parse("n = 1 AND n > 2.5 AND b = true AND n = '3'")
    assert plan(expr, pushable).pushed == (
        C("n", "=", 1),
        C("n", ">", Decimal("2.5")),
        C("b", "=", True),
    )
    assert plan(parse("b = 1"), pushable).pushed == ()


def test_pushable_field_validation() -> None:
    assert PushableField("To", {"="}).ops == frozenset({"="})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown CEQL operators"):
        PushableField("To", frozenset({"LIKE"}))
    with pytest.raises(ValueError, match="unknown literal kinds"):
        PushableField("To", frozenset({"="}), kinds=frozenset({"phone"}))
    with pytest.raises(ValueError, match="vendor parameter"):
        PushableField("", frozenset({"="}))
    colliding = {
        "date_sent": PushableField("DateSent", frozenset({"="})),
        "datesent": PushableField("Other", frozenset({"="})),
    }
    with pytest.raises(ValueError, match="collide"):
        plan(parse("a = 1"), colliding)
