"""Property: for random queries over random message sets, the hub answers exactly what
evaluating the query over every record gives (D23), whatever is pushed down to Twilio."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubgate.kit.ceql import (
    And,
    Comparison,
    Expr,
    In,
    IsNull,
    Like,
    Not,
    Or,
    evaluate,
    parse_order_by,
    sort_records,
    to_ceql,
)
from tests.hub.conftest import HubInstance

MESSAGES = "/elements/api-v2/hubs/messaging/messages"
NUMBERS = ["+15558675310", "+15550001111", "+15017122661"]
WORDS = ["hi", "hello", "bye", "Hi there", "ok"]
START = datetime(2026, 1, 1, tzinfo=UTC)

message_sets = st.lists(
    st.tuples(
        st.sampled_from(NUMBERS),
        st.sampled_from(NUMBERS),
        st.sampled_from(WORDS),
        st.integers(min_value=0, max_value=4 * 24 - 1),  # hours after START
    ),
    max_size=10,
)


def _moments() -> st.SearchStrategy[str]:
    days = st.integers(min_value=0, max_value=4).map(
        lambda d: (START + timedelta(days=d)).date().isoformat()
    )
    stamps = st.integers(min_value=0, max_value=4 * 24).map(
        lambda h: (START + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return st.one_of(days, stamps)


_ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
predicates: st.SearchStrategy[Expr] = st.one_of(
    st.builds(
        Comparison, st.sampled_from(["to", "from", "To"]), st.just("="), st.sampled_from(NUMBERS)
    ),
    st.builds(Comparison, st.sampled_from(["to", "from"]), _ops, st.sampled_from(NUMBERS)),
    st.builds(Comparison, st.sampled_from(["DateSent", "date_sent"]), _ops, _moments()),
    st.builds(Comparison, st.just("body"), _ops, st.sampled_from(WORDS)),
    st.builds(Comparison, st.just("num_segments"), _ops, st.integers(min_value=0, max_value=2)),
    st.builds(
        Like, st.just("body"), st.sampled_from(["%hi%", "h%", "%e", "_k", "%"]), st.booleans()
    ),
    st.builds(
        In,
        st.sampled_from(["to", "from"]),
        st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=2),
        st.booleans(),
    ),
    st.builds(
        IsNull, st.sampled_from(["error_code", "to", "messaging_service_sid"]), st.booleans()
    ),
)


def _combine(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    pair = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(pair.map(And), pair.map(Or), children.map(Not))


_any = st.recursive(predicates, _combine, max_leaves=5)
# Push-down happens on top-level conjuncts only, so many queries get a pushable one up front.
_pushable = st.one_of(
    st.builds(Comparison, st.sampled_from(["to", "from"]), st.just("="), st.sampled_from(NUMBERS)),
    st.builds(
        Comparison, st.just("DateSent"), st.sampled_from(["=", "<", "<=", ">", ">="]), _moments()
    ),
)
queries = st.one_of(
    _any,
    st.tuples(_pushable, _any).map(And),
    st.tuples(_pushable, _pushable, _any).map(And),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    messages=message_sets,
    where=queries,
    page_size=st.integers(min_value=1, max_value=4),
    order=st.sampled_from([None, "date_sent desc", "body, sid"]),
)
async def test_hub_answer_equals_local_evaluation(
    instance: HubInstance,
    messages: list[tuple[str, str, str, int]],
    where: Expr,
    page_size: int,
    order: str | None,
) -> None:
    sim, sid = instance.account.sim, instance.account.sid
    sim.clear_messages(sid)
    for to, from_, body, hours in messages:
        sim.add_inbound_message(from_, to, body, account_sid=sid, at=START + timedelta(hours=hours))
    everything = sim.messages(sid)
    expected = [m["sid"] for m in everything if evaluate(where, m)]
    if order is not None:
        chosen = [m for m in everything if evaluate(where, m)]
        expected = [m["sid"] for m in sort_records(chosen, parse_order_by(order))]
    params = {"where": to_ceql(where), "pageSize": str(page_size)}
    if order is not None:
        params["orderBy"] = order
    seen: list[str] = []
    while True:
        response = await instance.hub.get(MESSAGES, params=params)
        assert response.status == 200, (params, response.text)
        seen.extend(m["sid"] for m in response.body)
        token = response.headers.get("Elements-Next-Page-Token")
        if token is None:
            break
        params = {**params, "nextPage": token}
    if order is None:
        assert sorted(seen) == sorted(expected), params["where"]
        assert len(seen) == len(set(seen))
    else:
        assert seen == expected, params
