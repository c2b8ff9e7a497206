"""CEQL over canonical fields (D38): rewritten to vendor names or left for after the mapping."""

from __future__ import annotations

from typing import Any

import pytest

from hubgate.kit.ceql import evaluate, parse, parse_order_by, to_ceql
from hubgate.transformations.mapping import from_vendor, parse_transformation
from hubgate.transformations.query import UnknownFieldError, rewrite

DEFINITION = ["id", "to", "from", "text", "status", "sentAt", "segments", "shout"]
TWILIO: dict[str, Any] = {
    "vendorName": "messages",
    "fields": [
        {"path": "id", "vendorPath": "sid"},
        {"path": "to", "vendorPath": "to", "vendorWritePath": "To"},
        {"path": "from", "vendorPath": "from", "vendorWritePath": "From"},
        {"path": "text", "vendorPath": "body", "vendorWritePath": "Body"},
        {"path": "status", "vendorPath": "details.status"},
        {"path": "segments", "vendorPath": "media[*].size()"},
        {"path": "sentAt", "vendorPath": "date_sent", "configuration": [
            {"type": "transformDate", "properties": {"pattern": "yyyy-MM-dd"}}]},
    ],
}  # fmt: skip
T = parse_transformation(TWILIO)


def text(expr: Any) -> str | None:
    return None if expr is None else to_ceql(expr)


def test_the_issue_example_goes_to_the_vendor_side_in_vendor_names() -> None:
    q = rewrite(T, DEFINITION, parse("text LIKE '%hi%' AND to='+15558675310'"))
    # The hub then pushes `to` to Twilio and checks `body LIKE` on Twilio's rows itself.
    assert text(q.vendor_where) == "body LIKE '%hi%' AND to = '+15558675310'"
    assert q.local_where is None


def test_nested_vendor_paths_keep_their_dots() -> None:
    q = rewrite(T, DEFINITION, parse("status = 'sent'"))
    assert text(q.vendor_where) == "details.status = 'sent'"


@pytest.mark.parametrize(
    "where",
    [
        "sentAt > '2026-01-01'",  # transformDate changes the value
        "segments > 1",  # .size() is computed
        "shout = 'HI'",  # in the definition, made by a script, not mapped
    ],
)
def test_fields_that_are_not_plain_copies_are_checked_after_mapping(where: str) -> None:
    q = rewrite(T, DEFINITION, parse(where))
    assert q.vendor_where is None
    assert text(q.local_where) == text(parse(where))


def test_conjuncts_split_and_an_or_stays_whole() -> None:
    q = rewrite(
        T,
        DEFINITION,
        parse("to = '+1' AND (text = 'a' OR id = 'b') AND (sentAt > '2026-01-01' OR to = '+2')"),
    )
    assert text(q.vendor_where) == "to = '+1' AND (body = 'a' OR sid = 'b')"
    assert text(q.local_where) == "sentAt > '2026-01-01' OR to = '+2'"


def test_a_field_the_common_resource_does_not_have_is_named() -> None:
    with pytest.raises(UnknownFieldError, match="Unknown field 'colour'") as caught:
        rewrite(T, DEFINITION, parse("to = '+1' AND colour = 'red'"), resource="myMessages")
    assert caught.value.field == "colour"
    assert "common resource 'myMessages'" in str(caught.value)
    with pytest.raises(UnknownFieldError, match="'size'"):
        rewrite(T, DEFINITION, order_by=parse_order_by("size"))
    with pytest.raises(UnknownFieldError, match="'nope'"):
        rewrite(T, DEFINITION, fields=["id", "nope"])


def test_names_match_loosely_as_elsewhere_in_ceql() -> None:
    q = rewrite(T, DEFINITION, parse("TEXT = 'a' AND Sent_At > '2026-01-01'"))
    assert text(q.vendor_where) == "body = 'a'"
    assert text(q.local_where) == "sentAt > '2026-01-01'"


def test_a_script_keeps_everything_after_the_mapping() -> None:
    scripted = parse_transformation({**TWILIO, "script": {"body": "done(transformedObject)"}})
    q = rewrite(scripted, DEFINITION, parse("to = '+1'"), parse_order_by("id"), ["id"])
    assert q.vendor_where is None
    assert text(q.local_where) == "to = '+1'"
    assert (q.vendor_order_by, q.vendor_fields) == ((), ())


def test_order_by_goes_to_the_vendor_only_as_a_whole() -> None:
    whole = rewrite(T, DEFINITION, order_by=parse_order_by("to desc, id"))
    assert [(k.field, k.descending) for k in whole.vendor_order_by] == [
        ("to", True),
        ("sid", False),
    ]
    assert whole.local_order_by == ()
    split = rewrite(T, DEFINITION, order_by=parse_order_by("to, sentAt desc"))
    assert split.vendor_order_by == ()
    assert [(k.field, k.descending) for k in split.local_order_by] == [
        ("to", False),
        ("sentAt", True),
    ]


def test_fields_are_projected_after_mapping_and_narrow_the_vendor_side_when_safe() -> None:
    q = rewrite(T, DEFINITION, parse("to = '+1'"), fields=["id", "text"])
    assert q.local_fields == ("id", "text")
    assert q.vendor_fields == ("sid", "body", "to")
    q = rewrite(T, DEFINITION, parse("sentAt > '2026-01-01'"), fields=["id"])
    assert q.vendor_fields == ()
    q = rewrite(T, DEFINITION, fields=["id", "sentAt"])
    assert q.vendor_fields == ()


def test_vendor_side_and_after_mapping_select_the_same_rows() -> None:
    rows = [
        {"sid": "1", "to": "+1", "body": "hi there", "details": {"status": "sent"}},
        {"sid": "2", "to": "+2", "body": "hi", "details": {"status": "failed"}},
        {"sid": "3", "to": "+1", "body": "bye", "details": {"status": "sent"}},
    ]
    where = parse("text LIKE '%hi%' AND status = 'sent'")
    q = rewrite(T, DEFINITION, where)
    assert q.vendor_where is not None
    vendor_side = [r["sid"] for r in rows if evaluate(q.vendor_where, r)]
    after = [r["sid"] for r in rows if evaluate(where, from_vendor(T, r))]
    assert vendor_side == after == ["1"]
