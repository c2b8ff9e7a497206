"""The poller's pure logic: configuration, URL filling, diffing, batching, due times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from hubgate.elements.twiliov2 import element as twilio
from hubgate.events import changes as ch
from hubgate.events.service import next_due

MOMENT = datetime(2026, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)


def test_the_twilio_default_poller_configuration_reads_as_one_messages_poller() -> None:
    specs = ch.poller_specs(twilio.manifest.defaults())
    assert specs == [
        ch.PollerSpec(
            resource="messages",
            url="/hubs/messaging/messages?where=DateSent='${date:yyyy-MM-dd'T'HH:mm:ssXXX}'",
            id_field="sid",
            interval_minutes=15,
        )
    ]


def test_poller_configuration_options_and_the_one_minute_floor() -> None:
    config = {
        "event.poller.refresh_interval": "0",
        "event.poller.configuration": json.dumps(
            {
                "accounts": {
                    "url": "/hubs/messaging/accounts?where=date_updated='${gmtDate:EEE}'",
                    "idField": "sid",
                    "pollDelay": 60,
                    "datesConfiguration": {"createdDateField": "date_created"},
                },
                "broken": "not an object",
                "nourl": {"idField": "x"},
            }
        ),
    }
    spec, broken, nourl = ch.poller_specs(config)
    assert spec.resource == "accounts"
    assert spec.interval_minutes == ch.MIN_INTERVAL_MINUTES
    assert spec.poll_delay_seconds == 60
    assert spec.created_field == "date_created"
    assert spec.problem is None
    # Entries that cannot run still get a poller, which says why (its lastError).
    assert (broken.resource, broken.problem) == ("broken", "broken must be an object with a url")
    assert nourl.problem == "nourl.url must be a hub path such as /hubs/messaging/nourl"
    assert ch.poller_specs({"event.poller.configuration": "not json"}) == []


def test_each_entry_that_cannot_run_is_named_with_its_field() -> None:
    cases = {
        "{}": "messages.url must be a hub path",
        '"x"': "messages must be an object with a url",
        '{"url": 5}': "messages.url must be a hub path",
        '{"url": "https://api.twilio.com/x"}': "messages.url must be a hub path",
        '{"url": "/hubs/messaging/messages?d=${date:yyyy"}': "messages.url cannot be filled",
        '{"url": "/hubs/messaging/messages", "idField": ""}': "messages.idField",
        '{"url": "/hubs/messaging/messages", "pollDelay": -1}': "messages.pollDelay",
        '{"url": "/hubs/messaging/messages", "pollDelay": true}': "messages.pollDelay",
        '{"url": "/hubs/messaging/messages", "datesConfiguration": 1}': (
            "messages.datesConfiguration must be"
        ),
        '{"url": "/hubs/messaging/messages", "datesConfiguration": {"createdDateField": 3}}': (
            "messages.datesConfiguration.createdDateField"
        ),
    }
    for entry, expected in cases.items():
        problem = ch.entry_problem("messages", json.loads(entry))
        assert problem is not None, entry
        assert problem.startswith(expected), (entry, problem)
    good = {"url": "/hubs/messaging/messages?where=DateSent='${date:yyyy-MM-dd}'"}
    assert ch.entry_problem("messages", good) is None


def test_fill_url_fills_from_the_last_poll_and_encodes_only_what_it_filled() -> None:
    url = ch.fill_url(
        "/hubs/messaging/messages?where=DateSent='${date:yyyy-MM-dd'T'HH:mm:ssXXX}'", MOMENT
    )
    assert url == "/hubs/messaging/messages?where=DateSent='2026-03-05T07%3A08%3A09Z'"
    assert parse_qs(urlsplit(url).query)["where"] == ["DateSent='2026-03-05T07:08:09Z'"]


def test_fill_url_keeps_plus_signs_and_spaces_of_rfc_2822_dates_intact() -> None:
    url = ch.fill_url(
        "/hubs/messaging/accounts?where=date_updated='${gmtDate:EEE, dd MMM yyyy HH:mm:ss Z}'"
        "&since=${epoch:s}&zone=${dateTimeZone:America/Denver:yyyy-MM-dd'T'HH:mm:ssXXX}",
        MOMENT,
    )
    query = parse_qs(urlsplit(url).query)
    assert query["where"] == ["date_updated='Thu, 05 Mar 2026 07:08:09 +0000'"]
    assert query["since"] == [str(int(MOMENT.timestamp()))]
    assert query["zone"] == ["2026-03-05T00:08:09-07:00"]


def test_fill_url_refuses_a_broken_placeholder() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        ch.fill_url("/hubs/x?where=a='${date:yyyy", MOMENT)
    with pytest.raises(ValueError, match="unknown placeholder"):
        ch.fill_url("/hubs/x?where=a='${nope:yyyy}'", MOMENT)


def message(sid: str, status: str = "queued", **extra: object) -> dict[str, object]:
    return {"sid": sid, "status": status, "body": "hello", **extra}


def test_diff_new_ids_are_created_changed_ones_updated_the_rest_nothing() -> None:
    known = {"SM1": ch.digest(message("SM1")), "SM2": ch.digest(message("SM2"))}
    found = ch.diff(
        [message("SM1"), message("SM2", "sent"), message("SM3")],
        object_type="messages",
        id_field="sid",
        seen=known,
    )
    assert [(c.object_id, c.event_type) for c in found] == [
        ("SM2", ch.UPDATED),
        ("SM3", ch.CREATED),
    ]
    assert found[0].raw == message("SM2", "sent")
    assert found[0].digest == ch.digest(message("SM2", "sent"))


def test_each_status_step_gives_exactly_one_update() -> None:
    seen: dict[str, str] = {}
    kinds = []
    for status in ("queued", "queued", "sent", "sent", "delivered", "delivered"):
        for change in ch.diff([message("SM1", status)], object_type="m", id_field="sid", seen=seen):
            kinds.append(change.event_type)
            seen[change.object_id] = change.digest
    assert kinds == [ch.CREATED, ch.UPDATED, ch.UPDATED]


def test_diff_ignores_key_order_skips_records_without_ids_and_counts_repeats_once() -> None:
    record = {"b": 1, "sid": "SM1", "a": 2}
    reordered = {"a": 2, "sid": "SM1", "b": 1}
    assert (
        ch.diff([reordered], object_type="m", id_field="sid", seen={"SM1": ch.digest(record)}) == []
    )
    found = ch.diff(
        [message("SM1"), {"status": "no id"}, {"sid": None}, message("SM1", "sent")],
        object_type="m",
        id_field="sid",
        seen={},
    )
    assert [(c.object_id, c.raw["status"]) for c in found] == [("SM1", "sent")]


def test_batches_hold_at_most_ten_changes_of_one_type() -> None:
    changes = [ch.Change("messages", f"SM{i}", ch.CREATED, {}, "") for i in range(23)]
    changes += [ch.Change("calls", "CA1", ch.CREATED, {}, "")]
    sizes = [(batch[0].object_type, len(batch)) for batch in ch.batches(changes)]
    assert sizes == [("messages", 10), ("messages", 10), ("messages", 3), ("calls", 1)]
    assert all(len({c.object_type for c in batch}) == 1 for batch in ch.batches(changes))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Thu, 05 Mar 2026 07:08:09 +0000", datetime(2026, 3, 5, 7, 8, 9, tzinfo=UTC)),
        ("2026-03-05T07:08:09Z", datetime(2026, 3, 5, 7, 8, 9, tzinfo=UTC)),
        ("2026-03-05T08:08:09+01:00", datetime(2026, 3, 5, 7, 8, 9, tzinfo=UTC)),
        (1772694489, datetime(2026, 3, 5, 7, 8, 9, tzinfo=UTC)),
        (1772694489000, datetime(2026, 3, 5, 7, 8, 9, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_date_reads_the_forms_vendors_use(value: object, expected: datetime | None) -> None:
    assert ch.parse_date(value) == expected


def test_made_since_needs_a_created_field_and_a_date_after_enabling() -> None:
    change = ch.Change(
        "m", "SM1", ch.CREATED, {"date_created": "Thu, 05 Mar 2026 07:08:09 +0000"}, ""
    )
    assert ch.made_since(change, "date_created", MOMENT)  # the same second counts as after
    assert not ch.made_since(change, "date_created", MOMENT + timedelta(seconds=1))
    assert not ch.made_since(change, None, MOMENT - timedelta(days=1))
    assert not ch.made_since(change, "date_sent", MOMENT - timedelta(days=1))


def test_next_due_keeps_a_fixed_rate_and_restarts_after_an_outage() -> None:
    due = datetime(2026, 3, 5, 12, 0, 30, tzinfo=UTC)
    late_start = due + timedelta(seconds=29)
    assert next_due(due, 1, late_start) == due + timedelta(minutes=1)
    after_outage = due + timedelta(minutes=7, seconds=5)
    assert next_due(due, 1, after_outage) == after_outage + timedelta(minutes=1)
