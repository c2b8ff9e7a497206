"""CEQL properties: rendering round-trips, the parsers fail only with CeqlSyntaxError, and
push-down planning never changes which records a query selects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hubgate.kit.ceql import (
    KEYWORDS,
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
    PushableField,
    Value,
    evaluate,
    parse,
    parse_fields,
    parse_order_by,
    plan,
    to_ceql,
)
from hubgate.kit.ceql_values import as_datetime, resolve_field

# Modest example counts keep the whole file to a few seconds.
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

OPS = ("=", "!=", "<", ">", "<=", ">=")

# --------------------------------------------------------------------------------- strategies

plain_fields = st.sampled_from(
    ["to", "from", "DateSent", "date_sent", "a.b", "_x", "x1.2", "body", "Name"]
)
odd_fields = st.text(min_size=1, max_size=12).filter(lambda s: "`" not in s)
keyword_fields = st.sampled_from(sorted(KEYWORDS)).flatmap(
    lambda k: st.sampled_from([k, k.lower(), k.capitalize()])
)
fields = st.one_of(plain_fields, odd_fields, keyword_fields)

decimals = st.builds(
    lambda mantissa, exponent: Decimal(mantissa).scaleb(exponent),
    st.integers(-(10**15), 10**15),
    st.integers(-20, 20),
)
values: st.SearchStrategy[Value] = st.one_of(
    st.text(max_size=20), st.integers(-(10**20), 10**20), st.booleans(), decimals
)

leaves: st.SearchStrategy[Expr] = st.one_of(
    st.builds(Comparison, fields, st.sampled_from(OPS), values),
    st.builds(Like, fields, st.text(max_size=10), st.booleans()),
    st.builds(In, fields, st.lists(values, min_size=1, max_size=4).map(tuple), st.booleans()),
    st.builds(IsNull, fields, st.booleans()),
)


def _compound(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    items = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(st.builds(And, items), st.builds(Or, items), st.builds(Not, children))


exprs: st.SearchStrategy[Expr] = st.recursive(leaves, _compound, max_leaves=12)


def depth(expr: Expr) -> int:
    """Nesting as the parser counts it: one per NOT, one per parenthesized child."""
    if isinstance(expr, Not):
        inner = expr.item
        return 1 + depth(inner) + (1 if isinstance(inner, And | Or) else 0)
    if isinstance(expr, And | Or):
        return max(depth(i) + (1 if isinstance(i, And | Or) else 0) for i in expr.items)
    return 0


def typed(expr: Expr) -> Any:
    """A structure equal only when types match too (the AST's == lets True equal 1)."""

    def value(v: Value) -> tuple[str, Value]:
        return (type(v).__name__, v)

    if isinstance(expr, Comparison):
        return ("cmp", expr.field, expr.op, value(expr.value))
    if isinstance(expr, Like):
        return ("like", expr.field, expr.pattern, expr.negated)
    if isinstance(expr, In):
        return ("in", expr.field, tuple(value(v) for v in expr.values), expr.negated)
    if isinstance(expr, IsNull):
        return ("null", expr.field, expr.negated)
    if isinstance(expr, And | Or):
        return (type(expr).__name__, tuple(typed(i) for i in expr.items))
    return ("not", typed(expr.item))


# --------------------------------------------------------------------------------- round trip


@FAST
@given(exprs)
def test_render_then_parse_is_identity(expr: Expr) -> None:
    assume(depth(expr) <= MAX_DEPTH)
    text = to_ceql(expr)
    assume(len(text) <= MAX_LENGTH)
    parsed = parse(text)
    assert parsed == expr
    assert typed(parsed) == typed(expr)
    assert to_ceql(parsed) == text  # canonical: rendering is a fixed point


# --------------------------------------------------------------------------------- robustness

ceql_alphabet = st.sampled_from(
    [
        *"()'`,=!<>-._% \t\n0123456789abxyz\u00e9\u2603",
        *("AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL", "true", "false", "asc", "desc", "''"),
    ]
)
ceqlish = st.lists(ceql_alphabet, max_size=40).map("".join)
PARSERS: tuple[Callable[[str], object], ...] = (parse, parse_order_by, parse_fields)


def only_syntax_errors(text: str) -> None:
    for parser in PARSERS:
        try:
            parser(text)
        except CeqlSyntaxError as caught:
            error = caught
        else:
            continue
        assert 0 <= error.position <= len(text)
        assert str(error).startswith("Invalid ")


@FAST
@given(st.one_of(st.text(), ceqlish))
def test_parsers_raise_only_syntax_errors(text: str) -> None:
    only_syntax_errors(text)


@FAST
@given(exprs, st.data())
def test_mutated_queries_raise_only_syntax_errors(expr: Expr, data: st.DataObject) -> None:
    text = to_ceql(expr)
    for _ in range(data.draw(st.integers(1, 3))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 5)))
        kind = data.draw(st.sampled_from(["delete", "insert", "duplicate", "replace"]))
        piece = data.draw(st.one_of(ceql_alphabet, st.text(max_size=3)))
        if kind == "delete":
            text = text[:start] + text[end:]
        elif kind == "insert":
            text = text[:start] + piece + text[start:]
        elif kind == "duplicate":
            text = text[:end] + text[start:end] + text[end:]
        else:
            text = text[:start] + piece + text[end:]
    only_syntax_errors(text)
    try:
        mutated = parse(text)
    except CeqlSyntaxError:
        return
    # Whatever still parses renders back to itself.
    assert parse(to_ceql(mutated)) == mutated


def test_stack_exhaustion_inputs() -> None:
    for text in ("(" * 100_000, "NOT " * 3000 + "a=1", "((((" * 30 + "a=1" + "))))" * 30):
        only_syntax_errors(text)


# --------------------------------------------------------------------------------- planning

BASE = datetime(2026, 3, 4, tzinfo=UTC)
PHONES = ("+15550001", "+15550002", "+15550003")
STATUSES = ("queued", "sent", "delivered", "failed")

moments = st.builds(
    lambda minutes: BASE + timedelta(minutes=minutes), st.integers(-3 * 1440, 3 * 1440)
)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-7)), timezone(timedelta(0))]
)


def rfc2822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=False)  # Twilio: "Wed, 04 Mar 2026 10:00:00 +0000"


record_dates = st.one_of(st.none(), moments.map(rfc2822), moments.map(lambda m: m.isoformat()))

# The fields that queries test are usually present (sometimes null) so that answers are rarely
# empty; the others are often missing.
records = st.fixed_dictionaries(
    {
        "to": st.one_of(st.sampled_from(PHONES), st.sampled_from(PHONES), st.none()),
        "from": st.one_of(st.sampled_from(PHONES), st.none()),
        "date_sent": record_dates,
        "status": st.one_of(st.sampled_from(STATUSES), st.none()),
    },
    optional={
        "sid": st.text(alphabet="SM0123", min_size=3, max_size=4),
        "num_segments": st.one_of(st.integers(0, 3), st.integers(0, 3).map(str)),
        "body": st.text(alphabet="aAbB %_", max_size=5),
    },
)

literal_dates = st.one_of(
    moments.map(lambda m: m.date().isoformat()),
    st.builds(lambda m, z: m.astimezone(z).isoformat(), moments, zones),
    moments.map(lambda m: m.strftime("%Y-%m-%dT%H:%M:%SZ")),
    moments.map(rfc2822),
    st.sampled_from(["yesterday", "", "2026-13-01", "2026-03-04"]),
)
phone_values: st.SearchStrategy[Value] = st.one_of(
    st.sampled_from(PHONES), st.sampled_from([15550001, "15550001", "+1555%"])
)
DATE_FIELDS = ("DateSent", "date_sent", "datesent", "DATESENT")
message_leaves: st.SearchStrategy[Expr] = st.one_of(
    st.builds(
        Comparison, st.sampled_from(["to", "To", "from"]), st.sampled_from(OPS), phone_values
    ),
    st.builds(Comparison, st.sampled_from(DATE_FIELDS), st.sampled_from(OPS), literal_dates),
    st.builds(Comparison, st.just("status"), st.sampled_from(OPS), st.sampled_from(STATUSES)),
    st.builds(Comparison, st.just("numSegments"), st.sampled_from(OPS), st.integers(0, 3)),
    st.builds(Like, st.sampled_from(["body", "to"]), st.sampled_from(["%a%", "b_", "%"])),
    st.builds(In, st.just("status"), st.lists(st.sampled_from(STATUSES), min_size=1).map(tuple)),
    st.builds(IsNull, st.sampled_from(["to", "date_sent", "status"]), st.booleans()),
)
message_exprs = st.recursive(message_leaves, _compound, max_leaves=5)
# Comparisons the planner can push, so that most conjunctions have some.
pushable_leaves: st.SearchStrategy[Expr] = st.one_of(
    st.builds(Comparison, st.sampled_from(["to", "To", "from"]), st.just("="), phone_values),
    st.builds(
        Comparison,
        st.sampled_from(DATE_FIELDS),
        st.sampled_from(["=", "<", "<=", ">", ">="]),
        literal_dates,
    ),
)
queries = st.one_of(
    message_exprs,
    st.lists(st.one_of(pushable_leaves, message_exprs), min_size=2, max_size=4).map(
        lambda items: And(tuple(items))
    ),
)

TWILIO = {
    "to": PushableField("To", frozenset({"="})),
    "from": PushableField("From", frozenset({"="})),
    "datesent": PushableField(
        "DateSent", frozenset({"=", "<", "<=", ">", ">="}), kinds=frozenset({"date"})
    ),
}


def utc_day(value: Any) -> Any:
    moment = as_datetime(value)
    return None if moment is None else moment.astimezone(UTC).date()


def twilio_stand_in(vendor: tuple[Comparison, ...], record: dict[str, Any]) -> bool:
    """What Twilio does with the pushed parameters: To/From match text exactly; DateSent
    compares whole GMT days, with DateSent< meaning "on or before" and DateSent> "on or
    after" that day (so it is coarser than the CEQL predicate it stands for)."""
    for condition in vendor:
        if condition.field in ("To", "From"):
            if resolve_field(record, condition.field) != condition.value:
                return False
            continue
        assert condition.field == "DateSent"
        sent, day = utc_day(resolve_field(record, "date_sent")), utc_day(condition.value)
        assert day is not None  # kinds={"date"} keeps unreadable values away from the vendor
        if sent is None:
            return False
        if condition.op == "=" and sent != day:
            return False
        if condition.op in ("<", "<=") and sent > day:
            return False
        if condition.op in (">", ">=") and sent < day:
            return False
        assert condition.op != "!="
    return True


def select(expr: Expr | None, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rows if expr is None else [row for row in rows if evaluate(expr, row)]


@FAST
@given(queries, st.lists(records, max_size=12))
def test_push_down_never_changes_the_answer(expr: Expr, rows: list[dict[str, Any]]) -> None:
    result = plan(expr, TWILIO)
    assert len(result.vendor) == len(result.pushed)
    assert result.residual is expr  # nothing is exact: the vendor only pre-filters
    prefiltered = [row for row in rows if twilio_stand_in(result.vendor, row)]
    assert select(result.residual, prefiltered) == select(expr, rows)


@FAST
@given(queries, st.lists(records, max_size=12))
def test_exact_push_down_never_changes_the_answer(expr: Expr, rows: list[dict[str, Any]]) -> None:
    # A vendor that applies CEQL's own semantics: pushed conjuncts may leave the residual.
    exact = {
        name: PushableField(f.vendor_name, f.ops, exact=True, kinds=f.kinds)
        for name, f in TWILIO.items()
    }
    result = plan(expr, exact)
    prefiltered = [
        row for row in rows if all(evaluate(condition, row) for condition in result.pushed)
    ]
    assert select(result.residual, prefiltered) == select(expr, rows)
    if result.pushed:
        assert result.residual is not expr
